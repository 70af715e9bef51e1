// Roles and what they show: a custom role that may only see the servers tagged `web`, a user
// created with it, and what that user sees (and does not see) after the first login.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  ADMIN,
  apiCall,
  launchBrowser,
  login,
  loginToDashboard,
  logout,
  navLinks,
  newContext,
  poll,
  setupViaApi,
  shot,
  startSteward,
  type Steward, serverNames } from './harness';

const WEB_USER = 'wendy';
const INITIAL_PASSWORD = 'initial-lantern-forest-7';
const NEW_PASSWORD = 'copper-meadow-sailing-93';

let steward: Steward;
let browser: Browser;

beforeAll(async () => {
  steward = await startSteward();
  await setupViaApi(steward);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await steward?.stop();
});


test('a role limited to web servers: its user sees only those, and no admin pages', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);

  const created: Record<string, string> = {};
  for (const [name, tags] of [
    ['web-1', ['web']],
    ['web-2', ['web', 'prod']],
    ['db-1', ['db']],
    ['db-2', ['db', 'prod']],
  ] as const) {
    const s = (await apiCall(page, 'POST', '/api/v1/servers', { name, host: `${name}.internal`, ssh_user: 'root', tags })) as { id: string };
    created[name] = s.id;
  }

  // The admin sees all four, and every admin page.
  await page.goto(`${steward.url}/servers`);
  await poll(() => serverNames(page)).toEqual(['db-1', 'db-2', 'web-1', 'web-2']);
  expect(await navLinks(page)).toEqual(['Dashboard', 'Servers', 'Checks', 'Scripts', 'Runs', 'Users', 'Roles', 'Recordings', 'Audit log', 'Settings']);
  await expect(page.getByRole('button', { name: 'Add server' }).isVisible()).resolves.toBe(true);

  // A custom role through the Roles page: "See servers", only on servers tagged web.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Roles' }).click();
  await page.getByRole('heading', { name: 'Roles', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Add role' }).click();
  const roleDialog = page.getByRole('dialog', { name: 'Add role' });
  await roleDialog.getByLabel('Name', { exact: true }).fill('Web viewers');
  await roleDialog.getByLabel('Description').fill('Sees the web tier');
  await roleDialog.getByRole('checkbox', { name: 'See servers' }).check();
  await roleDialog.getByRole('radio', { name: 'Only servers with these tags' }).check();
  // No tag yet: the dialog asks for one.
  await roleDialog.getByRole('button', { name: 'Save' }).click();
  await roleDialog.getByText('Name at least one tag.').waitFor();
  await roleDialog.getByLabel('Server tags').fill('web');
  await shot(page, '20-role-add');
  await roleDialog.getByRole('button', { name: 'Save' }).click();
  await roleDialog.waitFor({ state: 'hidden' });
  const roleRow = page.getByRole('row', { name: /Web viewers/ });
  await roleRow.waitFor();
  const roleCells = (await roleRow.getByRole('cell').allTextContents()).map((t) => t.trim());
  expect(roleCells.slice(0, 4)).toEqual(['Web viewersSees the web tier', 'servers.read', 'web', '0']);
  await shot(page, '21-roles');

  // A user with that role through the Users page.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
  await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Add user' }).click();
  const userDialog = page.getByRole('dialog', { name: 'Add user' });
  await userDialog.getByLabel('Username').fill(WEB_USER);
  await userDialog.getByLabel('E-mail').fill('wendy@example.org');
  await userDialog.getByLabel('Initial password').fill('short');
  await userDialog.getByRole('button', { name: 'Save' }).click();
  await userDialog.getByText('Use at least 10 characters.').waitFor();
  await userDialog.getByLabel('Initial password').fill(INITIAL_PASSWORD);
  await userDialog.getByRole('checkbox', { name: 'Web viewers' }).check();
  await shot(page, '22-user-add');
  await userDialog.getByRole('button', { name: 'Save' }).click();
  await userDialog.waitFor({ state: 'hidden' });
  const userRow = page.getByRole('row', { name: new RegExp(WEB_USER) });
  await userRow.waitFor();
  const userCells = (await userRow.getByRole('cell').allTextContents()).map((t) => t.trim());
  expect(userCells.slice(0, 4)).toEqual([`${WEB_USER}wendy@example.org`, 'Web viewers', 'Active', 'Off']);
  await shot(page, '23-users');
  await logout(page);

  // First login with the initial password: the user must choose a new one first.
  await login(page, steward, WEB_USER, INITIAL_PASSWORD);
  await page.waitForURL((u) => u.pathname === '/profile/security');
  await page.getByRole('heading', { name: 'Password and 2FA', level: 1 }).waitFor();
  await page.getByText('Your password was set by an administrator. Choose your own to continue.').waitFor();
  // Anywhere else leads back here until it is done.
  await page.goto(`${steward.url}/servers`);
  await page.waitForURL((u) => u.pathname === '/profile/security');
  await shot(page, '24-first-login-change-password');
  await page.getByLabel('Current password').fill(INITIAL_PASSWORD);
  await page.getByLabel('New password').fill(NEW_PASSWORD);
  await page.getByLabel('Repeat password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.waitForURL((u) => u.pathname === '/');
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await expect(page.getByText(`Signed in as ${WEB_USER}`).isVisible()).resolves.toBe(true);

  // Only the pages the role allows, and only the web servers.
  expect(await navLinks(page)).toEqual(['Dashboard', 'Servers', 'Checks']);
  await shot(page, '25-limited-dashboard');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Servers' }).click();
  await page.getByRole('heading', { name: 'Servers', level: 1 }).waitFor();
  await poll(() => serverNames(page)).toEqual(['web-1', 'web-2']);
  await expect(page.getByRole('button', { name: 'Add server' }).count()).resolves.toBe(0);
  await expect(page.getByLabel('Tags', { exact: true }).locator('option').allTextContents()).resolves.not.toContain('db (2)');
  await shot(page, '26-limited-servers');

  // A web server's page, read-only.
  await page.getByRole('link', { name: 'web-2' }).click();
  await page.getByRole('heading', { name: 'web-2', level: 1 }).waitFor();
  await expect(page.getByRole('button', { name: 'Edit', exact: true }).count()).resolves.toBe(0);
  await expect(page.getByRole('button', { name: 'Delete', exact: true }).count()).resolves.toBe(0);
  await expect(page.getByRole('button', { name: 'Set credential' }).count()).resolves.toBe(0);

  // A db server by its address: not found, as if it did not exist.
  await page.goto(`${steward.url}/servers/${created['db-1']}`);
  await poll(() => page.getByRole('alert').textContent()).toBe('Not found. It may have been deleted, or you may not have access.');
  await expect(page.getByText('db-1').count()).resolves.toBe(0);
  await shot(page, '27-limited-db-server-not-found');

  // Admin pages by their address: not allowed.
  for (const path of ['/users', '/roles', '/audit', '/settings']) {
    await page.goto(`${steward.url}${path}`);
    await page.getByRole('heading', { name: 'Not allowed', level: 1 }).waitFor();
    await expect(page.getByText('Your roles do not allow this page. Ask an administrator if you need it.').isVisible()).resolves.toBe(true);
  }
  await shot(page, '28-limited-users-not-allowed');
  await logout(page, WEB_USER);

  // The admin sees the change: the user has logged in, and the role has a user.
  await loginToDashboard(page, steward, ADMIN);
  await page.goto(`${steward.url}/roles`);
  await poll(async () => (await page.getByRole('row', { name: /Web viewers/ }).getByRole('cell').nth(3).textContent())?.trim()).toBe('1');

  expect(problems).toEqual([]);
  await context.close();
});
