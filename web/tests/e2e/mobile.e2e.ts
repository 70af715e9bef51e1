// Phones: at 375×812 every page is reachable from the ☰ menu (the account pages from the user
// menu beside it), shows its title, and fits the screen's width.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN, PASSWORD, apiCall, launchBrowser, login, newContext, setupViaApi, shot, startSteward, type Steward } from './harness';

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

const WIDTH = 375;

/** Fails, naming the elements that stick out, when the page is wider than the phone. */
async function expectNoHorizontalScroll(page: Page, what: string) {
  const r = await page.evaluate((phone) => {
    const sticksOut = (el: Element) => {
      if (el.parentElement?.closest('.table-wrap') || el.closest('.visually-hidden, .skip-link')) return false;
      const box = el.getBoundingClientRect();
      if (box.width === 0) return false;
      const clipped = getComputedStyle(el).overflowX !== 'visible';
      return box.right > phone + 0.5 || (!clipped && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0);
    };
    const all = [...document.querySelectorAll('body *')].filter(sticksOut);
    const offenders = all
      .filter((el) => !all.some((other) => other !== el && el.contains(other)))
      .slice(0, 6)
      .map((el) => `<${el.tagName.toLowerCase()} class="${el.className}"> ${(el.textContent ?? '').trim().slice(0, 40)}`);
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, offenders };
  }, WIDTH);
  const detail = `${what} is wider than the phone: ${r.offenders.join('; ')}`;
  // A phone browser zooms out to fit wide content, so the visible width must stay the phone's.
  expect(r.innerWidth, detail).toBe(WIDTH);
  expect(r.scrollWidth, detail).toBeLessThanOrEqual(r.innerWidth);
}

/** Waits for the page's h1 and checks it is on screen. */
async function expectTitle(page: Page, title: string) {
  const h1 = page.getByRole('heading', { name: title, exact: true, level: 1 });
  await h1.waitFor();
  await expect(h1.isVisible()).resolves.toBe(true);
  const box = (await h1.boundingBox())!;
  expect(box.x).toBeGreaterThanOrEqual(0);
  expect(box.x + box.width).toBeLessThanOrEqual(WIDTH);
}

/** Opens the ☰ menu and follows one of its links; the menu closes again. */
async function viaMenu(page: Page, link: string) {
  const toggle = page.getByRole('button', { name: 'Menu' });
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(toggle.getAttribute('aria-expanded')).resolves.toBe('false');
  await expect(nav.isVisible()).resolves.toBe(false);
  await toggle.click();
  await nav.waitFor();
  await expect(toggle.getAttribute('aria-expanded')).resolves.toBe('true');
  await nav.getByRole('link', { name: link, exact: true }).click();
  await nav.waitFor({ state: 'hidden' });
  await expect(toggle.getAttribute('aria-expanded')).resolves.toBe('false');
}

/** Opens the user menu and follows one of its items. */
async function viaUserMenu(page: Page, item: string) {
  await page.getByRole('button', { name: ADMIN }).click();
  const menu = page.getByRole('menu');
  await menu.waitFor();
  await expectNoHorizontalScroll(page, 'the open user menu');
  await menu.getByRole('menuitem', { name: item, exact: true }).click();
  await menu.waitFor({ state: 'hidden' });
}

test('on a phone every page is reachable from the menus and fits the screen', async () => {
  const { context, problems } = await newContext(browser, { viewport: { width: WIDTH, height: 812 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();

  // Content that could widen pages: long names, notes, tags, a public key, a second user and role.
  await page.goto(`${steward.url}/login`);
  await expectTitle(page, 'Log in to Steward');
  await expectNoHorizontalScroll(page, 'the login page');
  await shot(page, '36-mobile-login');
  await login(page, steward, ADMIN, PASSWORD);
  await expectTitle(page, 'Dashboard');
  const server = (await apiCall(page, 'POST', '/api/v1/servers', {
    name: 'frontend-eu-west-production-01.example.org',
    host: 'frontend-eu-west-production-01.internal.example.org',
    ssh_user: 'deploy',
    tags: ['web', 'prod', 'eu-west', 'frontend'],
    notes: 'Serves https://www.example.org/a/very/long/path/that/does/not/break/anywhere/on/its/own/at/all',
  })) as { id: string };
  await apiCall(page, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'generate' });
  for (let i = 1; i <= 5; i++) {
    await apiCall(page, 'POST', '/api/v1/servers', { name: `db-${i}`, host: `10.0.3.${i}`, ssh_user: 'postgres', tags: ['db'] });
  }
  await apiCall(page, 'POST', '/api/v1/roles', { name: 'Operators of the web tier', permissions: ['servers.read', 'servers.write'], server_tags: ['web'] });
  await apiCall(page, 'POST', '/api/v1/users', { username: 'operator', password: 'initial-lantern-forest-7', email: 'operator@example.org', roles: ['operator'] });
  await apiCall(page, 'POST', '/api/v1/api-tokens', { name: 'backup script', permissions: ['servers.read'], expires_in_days: 30 });
  const script = (await apiCall(page, 'POST', '/api/v1/scripts', {
    name: 'rotate-logs-on-every-frontend-production-server',
    description: 'Rotates /var/log/a/very/long/path/that/does/not/break/anywhere/on/its/own/at/all',
    body: '# a long line that must wrap rather than widen the page: ' + 'x'.repeat(200) + '\necho "$KEEP"\n',
    parameters: [{ name: 'KEEP', label: 'Days to keep', type: 'integer', required: true, default: '7' }],
    // Saving a script needs a step-up; given inline here.
    step_up: { password: PASSWORD },
  })) as { id: string };
  const local = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'local-closed', host: '127.0.0.1', port: 1, ssh_user: 'root' })) as { id: string };
  await apiCall(page, 'POST', '/api/v1/executions', { script_id: script.id, script_version: 1, server_ids: [local.id], timeout_secs: 10 });
  // A new session, which has not proven itself yet: the terminal's step-up dialog is checked below.
  await context.clearCookies();
  await login(page, steward, ADMIN, PASSWORD);
  await expectTitle(page, 'Dashboard');
  await page.reload();
  await expectTitle(page, 'Dashboard');
  await expectNoHorizontalScroll(page, 'the dashboard');

  // The ☰ menu over the page.
  await page.getByRole('button', { name: 'Menu' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  await expectNoHorizontalScroll(page, 'the open menu');
  await shot(page, '38-mobile-menu-open');
  await page.getByRole('button', { name: 'Menu' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor({ state: 'hidden' });

  const pages: [string, string, string][] = [
    ['Servers', 'Servers', '39-mobile-servers'],
    ['Users', 'Users', '41-mobile-users'],
    ['Roles', 'Roles', '42-mobile-roles'],
    ['Audit log', 'Audit log', '43-mobile-audit'],
    ['Scripts', 'Scripts', '43a-mobile-scripts'],
    ['Runs', 'Runs', '43c-mobile-runs'],
    ['Recordings', 'Recordings', '43b-mobile-recordings'],
    ['Settings', 'Settings', '44-mobile-settings'],
    ['Dashboard', 'Dashboard', '37-mobile-dashboard'],
  ];
  for (const [link, title, name] of pages) {
    await viaMenu(page, link);
    await expectTitle(page, title);
    // The page's data is in before its width is measured (the title shows while it loads).
    const loaded = {
      Servers: page.getByRole('link', { name: 'frontend-eu-west-production-01.example.org' }),
      Users: page.getByRole('cell', { name: /operator@example\.org/ }),
      Roles: page.getByRole('cell', { name: 'Operators of the web tier' }),
      Scripts: page.getByRole('link', { name: 'rotate-logs-on-every-frontend-production-server' }),
      Runs: page.getByRole('link', { name: /rotate-logs/ }).first(),
    }[link];
    await loaded?.waitFor();
    await expectNoHorizontalScroll(page, `the ${title} page`);
    await shot(page, name);

    if (link === 'Users' || link === 'Roles') {
      // The actions column keeps its name for screen readers.
      await expect.poll(() => page.getByRole('columnheader', { name: 'Actions' }).count()).toBe(1);
    }
    if (link === 'Scripts') {
      // A script in the editor.
      await page.getByRole('link', { name: 'rotate-logs-on-every-frontend-production-server' }).click();
      await expectTitle(page, 'rotate-logs-on-every-frontend-production-server');
      await page.getByTestId('script-body').waitFor();
      await expectNoHorizontalScroll(page, 'the script editor');
      await shot(page, '43b-mobile-script-editor');
    }
    if (link === 'Runs') {
      // A run's page, from the history.
      await page.getByRole('link', { name: /rotate-logs/ }).first().click();
      await expectTitle(page, 'rotate-logs-on-every-frontend-production-server');
      await page.getByTestId('host-pane').first().waitFor();
      await expectNoHorizontalScroll(page, 'the run page');
      await shot(page, '43d-mobile-run');
    }
    if (link === 'Servers') {
      // A server's detail page, from the list.
      await page.getByRole('link', { name: 'frontend-eu-west-production-01.example.org' }).click();
      await expectTitle(page, 'frontend-eu-west-production-01.example.org');
      await page.locator('dt:text-is("Public key") + dd code').waitFor();
      await expectNoHorizontalScroll(page, 'the server detail page');
      await shot(page, '40-mobile-server-detail');
      // Its terminal: the step-up dialog, then the terminal itself.
      await page.getByRole('link', { name: 'Open terminal' }).click();
      await page.getByRole('dialog', { name: 'Confirm it is you' }).waitFor();
      await expectNoHorizontalScroll(page, 'the step-up dialog');
      await page.getByRole('dialog').getByLabel('Your password', { exact: true }).fill(PASSWORD);
      await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
      await page.locator('.xterm-rows').waitFor();
      await expectNoHorizontalScroll(page, 'the terminal page');
      await shot(page, '40b-mobile-terminal');
    }
  }

  // The account pages live in the user menu next to ☰.
  for (const [item, name] of [
    ['Profile', '45-mobile-profile'],
    ['Password and 2FA', '46-mobile-security'],
    ['API tokens', '47-mobile-tokens'],
  ] as const) {
    await viaUserMenu(page, item);
    await expectTitle(page, item);
    await expectNoHorizontalScroll(page, `the ${item} page`);
    await shot(page, name);
  }
  // The token list loads after the page title shows: wait for it rather than read it once.
  await page.getByRole('table', { name: 'API tokens' }).getByText('backup script').waitFor();

  // A dialog fits too.
  await viaMenu(page, 'Servers');
  await page.getByRole('button', { name: 'Add server' }).click();
  await page.getByRole('dialog', { name: 'Add server' }).waitFor();
  await expectNoHorizontalScroll(page, 'the Add server dialog');
  const dialogBox = (await page.getByRole('dialog', { name: 'Add server' }).boundingBox())!;
  expect(dialogBox.x).toBeGreaterThanOrEqual(0);
  expect(dialogBox.x + dialogBox.width).toBeLessThanOrEqual(WIDTH);
  await shot(page, '48-mobile-add-server');

  expect(problems).toEqual([]);
  await context.close();
});

test('on a 4K screen the frame keeps its shape and pages use the width without scrolling sideways', async () => {
  const { context, problems } = await newContext(browser, { viewport: { width: 3840, height: 2160 } });
  const page = await context.newPage();
  await login(page, steward, ADMIN, PASSWORD);
  await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
  for (const [path, title] of [
    ['/servers', 'Servers'],
    ['/users', 'Users'],
    ['/audit', 'Audit log'],
  ] as const) {
    await page.goto(`${steward.url}${path}`);
    await page.getByRole('heading', { name: title, level: 1 }).waitFor();
    const r = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      inner: window.innerWidth,
      nav: document.querySelector('#sidenav')?.getBoundingClientRect().width ?? 0,
      main: document.querySelector('#main')?.getBoundingClientRect().width ?? 0,
    }));
    expect(r.scroll, path).toBeLessThanOrEqual(r.inner);
    // The side navigation stays visible and narrow; the content takes the rest.
    expect(r.nav, path).toBeGreaterThan(150);
    expect(r.nav, path).toBeLessThan(400);
    expect(r.main, path).toBeGreaterThan(3000);
    await shot(page, `49-4k${path.replace('/', '-')}`);
  }
  expect(problems).toEqual([]);
  await context.close();
});
