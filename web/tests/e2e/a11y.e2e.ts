// Accessibility: axe-core (WCAG 2.1 A and AA rules, colour contrast included) over every main
// page in both themes, and keyboard use of the frame and a dialog.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { a11yViolations, ADMIN, PASSWORD, apiCall, launchBrowser, loginToDashboard, newContext, setupThroughUi, startSteward, type Steward } from './harness';

let steward: Steward;
let browser: Browser;

beforeAll(async () => {
  steward = await startSteward();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await steward?.stop();
});

test('every main page meets WCAG 2.1 AA in light and dark themes', async () => {
  const { context } = await newContext(browser, { bypassCSP: true });
  const page = await context.newPage();
  const found: string[] = [];
  const check = async (name: string) => {
    for (const v of await a11yViolations(page)) found.push(`${name}: ${v}`);
  };

  await page.goto(`${steward.url}/setup?token=${encodeURIComponent(steward.setupToken)}`);
  await page.getByRole('button', { name: 'Create administrator' }).waitFor();
  await check('setup');
  await setupThroughUi(page, steward);
  const server = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'web-1', host: '10.0.0.1', ssh_user: 'root', tags: ['web'] })) as { id: string };
  await apiCall(page, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'generate' });
  // A script with a parameter, and a finished run of it (on a closed local port: one error).
  const script = (await apiCall(page, 'POST', '/api/v1/scripts', {
    name: 'greet',
    description: 'Says hello',
    body: '# says hello\necho "hello $WHO"\n',
    parameters: [{ name: 'WHO', label: 'Who to greet', type: 'string', required: true, default: 'world' }],
    // Saving a script needs a step-up; given inline here.
    step_up: { password: PASSWORD },
  })) as { id: string };
  const local = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'local-closed', host: '127.0.0.1', port: 1, ssh_user: 'root' })) as { id: string };
  const run = (await apiCall(page, 'POST', '/api/v1/executions', { script_id: script.id, script_version: 1, server_ids: [local.id], timeout_secs: 10 })) as { id: string };
  // A new session, which has not proven itself yet: the step-up dialog is checked below.
  await context.clearCookies();
  await loginToDashboard(page, steward);

  const pages: [string, string][] = [
    ['/', 'Dashboard'],
    ['/servers', 'Servers'],
    [`/servers/${server.id}`, 'web-1'],
    ['/users', 'Users'],
    ['/roles', 'Roles'],
    ['/audit', 'Audit log'],
    ['/scripts', 'Scripts'],
    [`/scripts/${script.id}`, 'greet'],
    ['/scripts/new', 'New script'],
    ['/runs', 'Runs'],
    [`/runs/${run.id}`, 'greet'],
    ['/settings', 'Settings'],
    ['/profile', 'Profile'],
    ['/profile/security', 'Password and 2FA'],
    ['/profile/tokens', 'API tokens'],
    // Without a step-up the terminal page asks for the password in a dialog.
    [`/servers/${server.id}/terminal`, 'Terminal on web-1'],
    ['/recordings', 'Recordings'],
  ];
  for (const theme of ['light', 'dark']) {
    await page.evaluate((t) => localStorage.setItem('steward.theme', t), theme);
    for (const [path, heading] of pages) {
      await page.goto(`${steward.url}${path}`);
      await page.getByRole('heading', { level: 1, name: heading }).waitFor();
      await check(`${theme} ${path}`);
    }
    // A dialog, too.
    await page.goto(`${steward.url}/servers`);
    await page.getByRole('button', { name: 'Add server' }).click();
    await page.getByRole('dialog').waitFor();
    await check(`${theme} add-server dialog`);
    // The run dialog, and the step-up dialog an ad-hoc command asks for.
    await page.goto(`${steward.url}/scripts/${script.id}`);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByRole('dialog', { name: 'Run greet' }).waitFor();
    await check(`${theme} run dialog`);
    await page.goto(`${steward.url}/runs`);
    await page.getByRole('button', { name: 'Ad-hoc command' }).click();
    const adHoc = page.getByRole('dialog', { name: 'Run an ad-hoc command' });
    await adHoc.getByLabel('Command', { exact: true }).fill('uptime');
    await adHoc.getByLabel('local-closed', { exact: false }).check();
    await adHoc.getByRole('button', { name: 'Start run' }).click();
    await page.getByRole('dialog', { name: 'Confirm it is you' }).waitFor();
    await check(`${theme} step-up dialog`);
  }
  // The terminal itself (the server is unreachable; the xterm screen is there all the same).
  await apiCall(page, 'POST', '/api/v1/auth/step-up', { password: 'violet-harbour-engine-42' });
  await page.goto(`${steward.url}/servers/${server.id}/terminal`);
  await page.locator('.xterm-rows').waitFor();
  await check('terminal');
  await page.goto(`${steward.url}/login`);
  expect(found).toEqual([]);
  await context.close();
});

test('the frame and dialogs work from the keyboard', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${steward.url}/login`);
  await page.getByLabel('Username').fill(ADMIN);
  await page.getByLabel('Password').fill('violet-harbour-engine-42');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();

  // The first Tab reaches the skip link, which moves focus to the content.
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
  await page.keyboard.press('Enter');
  expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');

  // Focus is visible: the focused control gets an outline.
  await page.goto(`${steward.url}/servers`);
  const add = page.getByRole('button', { name: 'Add server' });
  await add.focus();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Shift+Tab');
  const outline = await add.evaluate((el) => getComputedStyle(el).outlineStyle);
  expect(outline).not.toBe('none');

  // A dialog opens from the keyboard, traps focus inside, closes on Escape, and focus returns.
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Add server' });
  await dialog.waitFor();
  // Tab never reaches the page behind the modal (it may leave to the browser's own UI, which
  // shows up as focus on <body>).
  let insideAtLeastOnce = false;
  for (let i = 0; i < 25; i++) {
    await page.keyboard.press('Tab');
    const where = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a === document.body) return 'browser';
      return a.closest('dialog') ? 'dialog' : `page: ${a.outerHTML.slice(0, 80)}`;
    });
    expect(where === 'dialog' || where === 'browser', where).toBe(true);
    insideAtLeastOnce ||= where === 'dialog';
  }
  expect(insideAtLeastOnce).toBe(true);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' }).catch(() => dialog.waitFor({ state: 'hidden' }));
  expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Add server');
  expect(problems).toEqual([]);
  await context.close();
});
