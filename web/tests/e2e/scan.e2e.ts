// Service discovery on the server page against a real OpenSSH server on this machine: Scan now
// shows the OS and the PostgreSQL, MariaDB and Redis servers and the sshd that really run here,
// the proposals for the databases can be dismissed, and the filled panel passes axe (WCAG AA)
// in both themes and fits a 375 px phone screen.
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { a11yViolations, apiCall, launchBrowser, loginToDashboard, newContext, setupViaApi, shot, startSteward, type Steward } from './harness';
import { startSshd, type TestSshd } from './sshd';

let steward: Steward;
let sshd: TestSshd;
let browser: Browser;
let serverId = '';

beforeAll(async () => {
  steward = await startSteward();
  await setupViaApi(steward);
  sshd = await startSshd();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await sshd?.stop();
  await steward?.stop();
});

function prettyName(): string {
  const line = readFileSync('/etc/os-release', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('PRETTY_NAME='));
  return (line ?? '').slice('PRETTY_NAME='.length).replace(/^"|"$/g, '');
}

test('Scan now shows the OS, the databases and sshd, and proposals that can be dismissed', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const server = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'db-1', host: sshd.host, port: sshd.port, ssh_user: sshd.user })) as { id: string };
  serverId = server.id;
  const credential = (await apiCall(page, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'generate' })) as { public_key: string };
  sshd.authorize(credential.public_key);

  await page.goto(`${steward.url}/servers/${server.id}`);
  await page.getByText('Not scanned yet.', { exact: false }).waitFor();
  await page.getByRole('button', { name: 'Scan now' }).click();
  const services = page.getByTestId('scan-services');
  await services.waitFor({ timeout: 60_000 });
  for (const name of ['PostgreSQL', 'MariaDB', 'Redis', 'sshd (OpenSSH)']) {
    await services.getByText(name, { exact: true }).waitFor();
  }
  expect(await page.getByTestId('scan-os').textContent()).toBe(prettyName());
  // The port the sshd listens on, with its process (the sshd runs as root).
  await page.getByRole('cell', { name: String(sshd.port), exact: true }).waitFor();
  await page.getByRole('table', { name: 'Disks' }).waitFor();
  // Proposals for the databases.
  const proposals = page.getByTestId('scan-proposals');
  await proposals.getByText('Health check: PostgreSQL answers on 127.0.0.1:5432').waitFor();
  await proposals.getByText('Backup job for Redis').waitFor();
  // The scan was the first contact: the host key panel shows the key it recorded.
  expect(await page.getByTestId('host-key-fingerprint').textContent()).toBe(sshd.fingerprint());
  await shot(page, '60-server-scan');

  await page.getByRole('button', { name: 'Dismiss: Backup job for Redis' }).click();
  await expect.poll(() => page.getByRole('button', { name: 'Dismiss: Backup job for Redis' }).count()).toBe(0);
  await proposals.getByText('Dismissed').waitFor();

  // A second scan compares with the first.
  await page.getByRole('button', { name: 'Scan now' }).click();
  await page.getByText(/Nothing changed since the scan of|Changes since the scan of/).first().waitFor({ timeout: 60_000 });

  // Earlier scans: both listed; the first one shown on its own (nothing before it to compare
  // with), then back to the latest.
  await page.locator('summary', { hasText: 'Earlier scans' }).click();
  const rows = page.getByTestId('scan-history-row');
  await expect.poll(() => rows.count()).toBe(2);
  await page.locator('summary', { hasText: 'Earlier scans (2)' }).waitFor();
  await rows.nth(1).getByRole('button', { name: /^Show the scan of / }).click();
  await page.getByText(/^Showing the scan of /).waitFor();
  await services.getByText('PostgreSQL').first().waitFor();
  expect(await page.getByText(/Nothing changed since the scan of|Changes since the scan of/).count()).toBe(0);
  await shot(page, '62-server-scan-history');
  await page.getByRole('button', { name: 'Back to the latest scan' }).click();
  await page.getByText(/Nothing changed since the scan of|Changes since the scan of/).first().waitFor();

  // A health-check proposal becomes a check of the server's address, which runs at once. The
  // test's server is on loopback, which checks may reach only once an administrator allows it.
  await apiCall(page, 'PUT', '/api/v1/settings', { require_totp: false, check_allowed_networks: ['127.0.0.0/8'] });
  await page.getByRole('button', { name: 'Create check: Health check: PostgreSQL answers on 127.0.0.1:5432' }).click();
  await page.getByRole('heading', { name: 'PostgreSQL on db-1' }).waitFor();
  expect(await page.getByText(`${sshd.host}:5432`, { exact: true }).count()).toBe(1);
  await expect.poll(() => page.getByTestId('check-status').first().textContent(), { timeout: 15_000 }).toMatch(/^(Up|Down)$/);
  await page.goBack();
  await proposals.getByText('Accepted').waitFor();
  expect(problems).toEqual([]);
  await context.close();
});

test('the filled scan panel meets WCAG 2.1 AA in both themes and fits a phone', async () => {
  expect(serverId).not.toBe('');
  // The page's CSP forbids injected scripts; this context bypasses it for the audit only.
  const { context } = await newContext(browser, { bypassCSP: true });
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const found: string[] = [];
  for (const theme of ['light', 'dark']) {
    await page.evaluate((t) => localStorage.setItem('steward.theme', t), theme);
    await page.goto(`${steward.url}/servers/${serverId}`);
    await page.getByTestId('scan-services').waitFor();
    await page.locator('summary', { hasText: 'Earlier scans' }).click();
    await page.getByTestId('scan-history-row').first().waitFor();
    for (const v of await a11yViolations(page)) found.push(`${theme}: ${v}`);
  }
  expect(found).toEqual([]);
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto(`${steward.url}/servers/${serverId}`);
  await page.getByTestId('scan-services').waitFor();
  const r = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  expect(r.scroll).toBeLessThanOrEqual(r.inner);
  await shot(page, '61-server-scan-phone');
  await context.close();
});
