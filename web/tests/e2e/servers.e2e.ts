// The server inventory: adding a server with a generated key pair, searching, filtering by
// tag, sorting, paging, and a server's detail page with edit and delete.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PASSWORD, apiCall, launchBrowser, loginToDashboard, newContext, poll, setupViaApi, shot, startSteward, type Steward, serverNames } from './harness';

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


test('the add form refuses empty required fields without asking the server', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  await page.goto(`${steward.url}/servers`);
  await page.getByText('No servers yet. Add your first one.').waitFor();

  const posts: string[] = [];
  page.on('request', (r) => {
    if (r.method() !== 'GET' && r.url().includes('/api/v1/servers')) posts.push(`${r.method()} ${r.url()}`);
  });
  await page.getByRole('button', { name: 'Add server' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add server' });
  await dialog.getByRole('button', { name: 'Save' }).click();
  await poll(() => dialog.getByText('This field is required.').count()).toBe(2);
  await expect(dialog.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')).resolves.toBe('true');
  await expect(dialog.getByLabel('Host', { exact: true }).getAttribute('aria-invalid')).resolves.toBe('true');
  await shot(page, '10-server-form-invalid');
  expect(posts).toEqual([]);

  // Cancel leaves nothing behind.
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  expect(posts).toEqual([]);
  await expect(page.getByText('No servers yet. Add your first one.').isVisible()).resolves.toBe(true);

  expect(problems).toEqual([]);
  await context.close();
});

test('add a server with a generated key pair, then search, filter, sort and page', async () => {
  const { context, problems } = await newContext(browser);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: steward.url });
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Servers' }).click();
  await page.getByRole('heading', { name: 'Servers', level: 1 }).waitFor();

  await page.getByRole('button', { name: 'Add server' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add server' });
  await dialog.getByLabel('Name', { exact: true }).fill('alpha-web');
  await dialog.getByLabel('Host', { exact: true }).fill('10.0.0.5');
  await dialog.getByLabel('Tags', { exact: true }).fill('web, prod');
  await dialog.getByLabel('Notes').fill('The first web server');
  await dialog.getByRole('radio', { name: 'Generate a new key pair' }).check();
  await shot(page, '11-server-add');
  await dialog.getByRole('button', { name: 'Save' }).click();

  // The new key pair's public half, to paste into authorized_keys, with a Copy button.
  const keyDialog = page.getByRole('dialog', { name: 'Key pair generated' });
  await keyDialog.waitFor();
  await expect(keyDialog.textContent()).resolves.toContain('~root/.ssh/authorized_keys on 10.0.0.5');
  const publicKey = (await keyDialog.getByTestId('public-key').locator('code').textContent())!.trim();
  expect(publicKey.startsWith('ssh-ed25519 ')).toBe(true);
  const copy = keyDialog.getByTestId('public-key').getByRole('button');
  await expect(copy.getByText('Copy', { exact: true }).isVisible()).resolves.toBe(true);
  await copy.click();
  // The button says so for a moment.
  await copy.getByText('Copied', { exact: true }).waitFor();
  await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(publicKey);
  await shot(page, '12-server-key-generated');
  await keyDialog.getByRole('button', { name: 'Done' }).click();
  await keyDialog.waitFor({ state: 'hidden' });
  await poll(() => serverNames(page)).toEqual(['alpha-web']);

  // A few more, through the API for speed.
  const more = [
    { name: 'bravo-db', host: '10.0.1.7', tags: ['db', 'prod'] },
    { name: 'charlie-web', host: '10.0.0.6', tags: ['web'] },
    { name: 'delta-cache', host: '10.0.2.9', tags: ['cache'], notes: 'redis for the web tier' },
  ];
  for (const s of more) await apiCall(page, 'POST', '/api/v1/servers', { ssh_user: 'root', ...s });
  await page.reload();
  await poll(() => serverNames(page)).toEqual(['alpha-web', 'bravo-db', 'charlie-web', 'delta-cache']);
  await expect(page.getByRole('row', { name: /alpha-web/ }).textContent()).resolves.toContain('Generated key');
  await shot(page, '13-servers-list');

  // Search as one types: the URL keeps the query, the rows follow (name, host and notes).
  const search = page.getByRole('searchbox', { name: 'Search' });
  await search.fill('web');
  await page.waitForURL(/[?&]q=web(&|$)/);
  await poll(() => serverNames(page)).toEqual(['alpha-web', 'charlie-web', 'delta-cache']);
  await search.fill('10.0.1.');
  await page.waitForURL(/[?&]q=10\.0\.1\.(&|$)/);
  await poll(() => serverNames(page)).toEqual(['bravo-db']);
  await search.fill('no-such-server');
  await page.getByText('No servers match.').waitFor();
  await shot(page, '14-servers-no-match');
  await search.fill('');
  await page.waitForURL((u) => !u.searchParams.has('q'));
  await poll(() => serverNames(page)).toHaveLength(4);

  // The tag filter, from the select and from a tag in a row.
  const tagSelect = page.getByLabel('Tags', { exact: true });
  await expect(tagSelect.locator('option').allTextContents()).resolves.toEqual(['All tags', 'cache (1)', 'db (1)', 'prod (2)', 'web (2)']);
  await tagSelect.selectOption('prod');
  await page.waitForURL(/[?&]tag=prod(&|$)/);
  await poll(() => serverNames(page)).toEqual(['alpha-web', 'bravo-db']);
  await tagSelect.selectOption('');
  await page.waitForURL((u) => !u.searchParams.has('tag'));
  await poll(() => serverNames(page)).toHaveLength(4);
  await page.getByRole('row', { name: /delta-cache/ }).getByRole('button', { name: 'cache' }).click();
  await page.waitForURL(/[?&]tag=cache(&|$)/);
  await poll(() => serverNames(page)).toEqual(['delta-cache']);
  await expect(tagSelect.inputValue()).resolves.toBe('cache');
  await tagSelect.selectOption('');
  await poll(() => serverNames(page)).toHaveLength(4);

  // Sorting by a column header: the header says how it is sorted.
  const nameHeader = page.getByRole('columnheader', { name: 'Name' });
  const hostHeader = page.getByRole('columnheader', { name: 'Host' });
  await expect(nameHeader.getAttribute('aria-sort')).resolves.toBe('ascending');
  await expect(hostHeader.getAttribute('aria-sort')).resolves.toBe('none');
  await nameHeader.getByRole('button').click();
  await poll(() => nameHeader.getAttribute('aria-sort')).toBe('descending');
  await poll(() => serverNames(page)).toEqual(['delta-cache', 'charlie-web', 'bravo-db', 'alpha-web']);
  expect(new URL(page.url()).searchParams.get('order')).toBe('desc');
  await hostHeader.getByRole('button').click();
  await poll(() => hostHeader.getAttribute('aria-sort')).toBe('ascending');
  await expect(nameHeader.getAttribute('aria-sort')).resolves.toBe('none');
  // 10.0.0.5, 10.0.0.6, 10.0.1.7, 10.0.2.9
  await poll(() => serverNames(page)).toEqual(['alpha-web', 'charlie-web', 'bravo-db', 'delta-cache']);
  await shot(page, '15-servers-sorted-by-host');

  // Paging: 34 servers at 25 a page.
  for (let i = 1; i <= 30; i++) {
    await apiCall(page, 'POST', '/api/v1/servers', { name: `node-${String(i).padStart(2, '0')}`, host: `192.168.0.${i}`, ssh_user: 'deploy', tags: ['fleet'] });
  }
  await page.goto(`${steward.url}/servers`);
  await poll(() => serverNames(page)).toHaveLength(34);
  await expect(page.getByText('1–34 of 34').isVisible()).resolves.toBe(true);
  await page.getByLabel('Per page').selectOption('25');
  await page.waitForURL(/[?&]limit=25(&|$)/);
  await poll(() => serverNames(page)).toHaveLength(25);
  await page.getByText('1–25 of 34').waitFor();
  const previous = page.getByRole('button', { name: 'Previous' });
  const next = page.getByRole('button', { name: 'Next' });
  await expect(previous.isDisabled()).resolves.toBe(true);
  const firstPage = await serverNames(page);
  expect(firstPage.slice(0, 4)).toEqual(['alpha-web', 'bravo-db', 'charlie-web', 'delta-cache']);
  expect(firstPage.at(-1)).toBe('node-21');
  await next.click();
  await page.waitForURL(/[?&]offset=25(&|$)/);
  await page.getByText('26–34 of 34').waitFor();
  await poll(() => serverNames(page)).toEqual(['node-22', 'node-23', 'node-24', 'node-25', 'node-26', 'node-27', 'node-28', 'node-29', 'node-30']);
  await expect(next.isDisabled()).resolves.toBe(true);
  await shot(page, '16-servers-page-2');
  await previous.click();
  await page.getByText('1–25 of 34').waitFor();
  await poll(() => serverNames(page)).toEqual(firstPage);

  // A new search starts again at the first page.
  await next.click();
  await page.waitForURL(/[?&]offset=25(&|$)/);
  await search.fill('node-3');
  await page.waitForURL((u) => u.searchParams.get('q') === 'node-3' && !u.searchParams.has('offset'));
  await poll(() => serverNames(page)).toEqual(['node-30']);

  expect(problems).toEqual([]);
  await context.close();
});

test('a server’s detail page: fingerprint and public key, edit, delete', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  await page.goto(`${steward.url}/servers?q=alpha`);
  await page.getByRole('link', { name: 'alpha-web' }).click();
  await page.getByRole('heading', { name: 'alpha-web', level: 1 }).waitFor();
  expect(new URL(page.url()).pathname).toMatch(/^\/servers\/[0-9a-f-]{36}$/);
  const detailUrl = page.url();

  const fact = (term: string) => page.locator(`dt:text-is("${term}") + dd`);
  await expect(fact('Host').textContent()).resolves.toBe('10.0.0.5:22');
  await expect(fact('SSH user').textContent()).resolves.toBe('root');
  await expect(fact('Kind').textContent()).resolves.toBe('Generated key');
  await expect(fact('Key type').textContent()).resolves.toBe('ssh-ed25519');
  expect(await fact('Fingerprint').textContent()).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  const publicKey = (await fact('Public key').locator('code').textContent())!.trim();
  expect(publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+/);
  await expect(fact('Public key').getByRole('button', { name: 'Copy' }).isVisible()).resolves.toBe(true);
  await expect(page.getByText('The first web server').isVisible()).resolves.toBe(true);
  await expect(page.getByRole('navigation', { name: 'Breadcrumbs' }).getByRole('listitem').allTextContents()).resolves.toEqual([
    'Dashboard',
    'Servers',
    'alpha-web',
  ]);
  await shot(page, '17-server-detail');

  // Edit: the form starts with the current values and keeps the credential.
  await page.getByRole('button', { name: 'Edit', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Edit server' });
  await expect(dialog.getByLabel('Name', { exact: true }).inputValue()).resolves.toBe('alpha-web');
  await expect(dialog.getByLabel('Tags', { exact: true }).inputValue()).resolves.toBe('prod, web');
  await expect(dialog.getByRole('radio', { name: 'Keep as it is' }).isChecked()).resolves.toBe(true);
  await dialog.getByLabel('Name', { exact: true }).fill('alpha-web-2');
  await dialog.getByLabel('Host', { exact: true }).fill('10.0.0.50');
  await dialog.getByLabel('Port').fill('70000');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.getByText('Enter a port between 1 and 65535.').waitFor();
  await dialog.getByLabel('Port').fill('2222');
  await dialog.getByLabel('Tags', { exact: true }).fill('web');
  // A new endpoint for a server with a credential: the form says the credential stays, and
  // keeping it there asks for the password again.
  await expect(dialog.getByTestId('endpoint-change-notice').textContent()).resolves.toContain('the credential and the trusted host key stay');
  await shot(page, '18-server-edit');
  await dialog.getByRole('button', { name: 'Save' }).click();
  const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.getByLabel('Your password').fill(PASSWORD);
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.getByRole('heading', { name: 'alpha-web-2', level: 1 }).waitFor();
  await expect(fact('Host').textContent()).resolves.toBe('10.0.0.50:2222');
  await expect(fact('Tags').textContent()).resolves.toBe('web');
  // Same key as before.
  await expect(fact('Public key').locator('code').textContent()).resolves.toBe(publicKey);

  // Delete asks first; Cancel keeps the server.
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete server' });
  await expect(confirm.textContent()).resolves.toContain('Delete alpha-web-2 and its credential? This cannot be undone.');
  await shot(page, '19-server-delete-confirm');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'hidden' });
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await page.waitForURL((u) => u.pathname === '/servers');
  await poll(() => serverNames(page)).toContain('bravo-db');
  expect(await serverNames(page)).not.toContain('alpha-web-2');
  await expect(page.getByText('1–33 of 33').isVisible()).resolves.toBe(true);

  // The old address now says the server is gone.
  await page.goto(detailUrl);
  await poll(() => page.getByRole('alert').textContent())
    .toBe('Not found. It may have been deleted, or you may not have access.');

  expect(problems).toEqual([]);
  await context.close();
});
