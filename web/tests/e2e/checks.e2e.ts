// Health checks in the browser against a real HTTP server this test runs: a check of loopback is
// refused until loopback is allowed in Settings; create a check through the dialog, see the
// scheduler find it up, switch the server to answering 500 and see it down after Run now, read
// the uptime in the list and open the history chart (uPlot, under the strict CSP); the pages
// meet WCAG 2.1 AA.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { a11yViolations, apiCall, launchBrowser, loginToDashboard, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';

let steward: Steward;
let browser: Browser;
let target: Server;
let targetUrl = '';
let healthy = true;
let checkPath = '';

beforeAll(async () => {
  target = createServer((_req, res) => {
    res.writeHead(healthy ? 200 : 500, { 'Content-Type': 'text/plain' });
    res.end(healthy ? 'shop is open' : 'database unavailable');
  });
  await new Promise<void>((ok) => target.listen(0, '127.0.0.1', ok));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/health`;
  steward = await startSteward();
  await setupViaApi(steward);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await steward?.stop();
  await new Promise((ok) => target?.close(ok));
});

test('a check created in the browser goes up, then down, and shows its history', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Checks' }).click();
  await page.getByRole('heading', { name: 'Checks' }).waitFor();
  await page.getByText('No checks yet.', { exact: false }).waitFor();

  await page.getByRole('button', { name: 'Create check' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create check' });
  await dialog.getByLabel('Name').fill('Shop');
  await dialog.getByLabel('URL').fill(targetUrl);
  await dialog.getByLabel('Keyword', { exact: true }).fill('open');
  await dialog.getByLabel('Interval (seconds)').fill('10');
  await dialog.getByLabel('Timeout (seconds)').fill('3');
  // The test's server is on loopback, which checks may not reach by default.
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.getByText('target address 127.0.0.1 (loopback) is not allowed for checks', { exact: false }).waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  // An administrator allows loopback in Settings.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  const allowed = page.getByLabel('Networks health checks may reach');
  expect(await allowed.inputValue()).toBe('');
  await allowed.fill('127.0.0.1\n');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  expect(await allowed.inputValue()).toBe('127.0.0.1/32');
  await shot(page, '69-settings-check-networks');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Checks' }).click();
  await page.getByRole('button', { name: 'Create check' }).click();
  await dialog.getByLabel('Name').fill('Shop');
  await dialog.getByLabel('URL').fill(targetUrl);
  await dialog.getByLabel('Keyword', { exact: true }).fill('open');
  await dialog.getByLabel('Interval (seconds)').fill('10');
  await dialog.getByLabel('Timeout (seconds)').fill('3');
  await dialog.getByRole('button', { name: 'Save' }).click();

  // The check's page; the scheduler runs a new check within seconds.
  await page.getByRole('heading', { name: 'Shop' }).waitFor();
  checkPath = new URL(page.url()).pathname;
  await poll(() => page.getByTestId('check-status').first().textContent(), 20_000).toBe('Up');
  expect(await page.getByTestId('check-message').textContent()).toMatch(/^HTTP 200 in \d+ ms$/);
  await page.getByTestId('check-chart').locator('canvas').waitFor();

  // The server breaks: Run now shows it.
  healthy = false;
  await page.getByRole('button', { name: 'Run now' }).click();
  await poll(() => page.getByTestId('check-status').first().textContent()).toBe('Down');
  expect(await page.getByTestId('check-message').textContent()).toBe('HTTP 500, expected 200-399');
  expect(await page.getByTestId('uptime-24h').textContent()).toBe('50%');
  await page.getByRole('table', { name: 'Recent problems' }).getByText('HTTP 500, expected 200-399').waitFor();
  await shot(page, '70-check-detail');

  // The list: status, uptime, and the filter.
  await page.getByRole('navigation', { name: 'Breadcrumbs' }).getByRole('link', { name: 'Checks' }).click();
  const row = page.getByTestId('check-row').filter({ hasText: 'Shop' });
  await row.getByText('Down').waitFor();
  await row.getByText('50%').first().waitFor();
  await page.getByLabel('Status').selectOption('up');
  await page.getByText('No check matches.').waitFor();
  await page.getByLabel('Status').selectOption('down');
  await row.waitFor();
  await shot(page, '71-checks');

  // Back up again.
  healthy = true;
  await row.getByRole('link', { name: 'Shop' }).click();
  await page.getByRole('button', { name: 'Run now' }).click();
  await poll(() => page.getByTestId('check-status').first().textContent()).toBe('Up');
  expect(problems).toEqual([]);
  await context.close();
});

test('a TCP check added on a server page belongs to that server', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const server = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'shop-1', host: '127.0.0.1', ssh_user: 'root', tags: ['web'] })) as { id: string };
  await page.goto(`${steward.url}/servers/${server.id}`);
  const section = page.getByRole('region', { name: 'Checks' });
  await section.getByText('No health checks for this server.').waitFor();
  await section.getByRole('button', { name: 'Create check' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create check' });
  expect(await dialog.getByLabel('Server', { exact: true }).inputValue()).toBe(server.id);
  await dialog.getByLabel('Name').fill('Shop port');
  await dialog.getByLabel('Kind').selectOption('tcp');
  await dialog.getByLabel('Host').fill('127.0.0.1');
  await dialog.getByLabel('Port').fill(new URL(targetUrl).port);
  await dialog.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'Shop port' }).waitFor();
  await page.getByRole('link', { name: 'shop-1' }).waitFor();
  await poll(() => page.getByTestId('check-status').first().textContent(), 20_000).toBe('Up');
  expect(await page.getByTestId('check-message').textContent()).toMatch(/^connected in \d+ ms$/);
  await page.getByRole('link', { name: 'shop-1' }).click();
  await page.getByRole('region', { name: 'Checks' }).getByRole('link', { name: 'Shop port' }).waitFor();
  expect(problems).toEqual([]);
  await context.close();
});

test('the checks pages meet WCAG 2.1 AA in both themes and fit a phone', async () => {
  expect(checkPath).not.toBe('');
  // The page's CSP forbids injected scripts; this context bypasses it for the audit only.
  const { context } = await newContext(browser, { bypassCSP: true });
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const found: string[] = [];
  for (const theme of ['light', 'dark']) {
    await page.evaluate((t) => localStorage.setItem('steward.theme', t), theme);
    await page.goto(`${steward.url}/checks`);
    await page.getByTestId('check-row').first().waitFor();
    for (const v of await a11yViolations(page)) found.push(`${theme} list: ${v}`);
    await page.goto(`${steward.url}${checkPath}`);
    await page.getByTestId('check-chart').locator('canvas').waitFor();
    for (const v of await a11yViolations(page)) found.push(`${theme} detail: ${v}`);
  }
  expect(found).toEqual([]);
  await page.setViewportSize({ width: 375, height: 800 });
  for (const path of ['/checks', checkPath]) {
    await page.goto(`${steward.url}${path}`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    await page.waitForTimeout(300);
    const r = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
    expect(r.scroll, path).toBeLessThanOrEqual(r.inner);
  }
  await shot(page, '72-check-phone');
  await context.close();
});
