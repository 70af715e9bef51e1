// Monitoring in the browser against a real OpenSSH server on this machine, polled agentlessly by
// Steward: the dashboard shows the server while the live socket is refused (polling), goes live
// once it is let through, and shows values that change without a reload; the table view and
// filters work; the server's page draws its charts (uPlot canvases under the strict CSP); both
// meet WCAG 2.1 AA in both themes. Needs the agentless collector (`metrics/collect.rs`).
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { a11yViolations, apiCall, launchBrowser, loginToDashboard, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';
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

test('the dashboard shows a server with live values, and its page draws charts', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const server = (await apiCall(page, 'POST', '/api/v1/servers', {
    name: 'mon-1',
    host: sshd.host,
    port: sshd.port,
    ssh_user: sshd.user,
    tags: ['web'],
    metrics_interval_secs: 5,
  })) as { id: string };
  serverId = server.id;
  const credential = (await apiCall(page, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'generate' })) as { public_key: string };
  sshd.authorize(credential.public_key);
  await apiCall(page, 'POST', '/api/v1/servers', { name: 'quiet-1', host: '127.0.0.9', ssh_user: 'nobody', tags: ['db'], monitoring: 'off' });

  // The live socket is refused at first: the dashboard polls the summary, and goes live once
  // the socket is let through (reconnecting with backoff).
  let refuse = true;
  await page.routeWebSocket(/\/api\/v1\/live$/, (ws) => {
    if (refuse) void ws.close({ code: 1011, reason: 'refused by the test' });
    else ws.connectToServer();
  });
  await page.goto(`${steward.url}/`);
  const fleet = page.getByRole('region', { name: 'Fleet' });
  const card = fleet.locator(`[data-testid="fleet-card"][data-server="${server.id}"]`);
  await card.waitFor();
  expect(await fleet.getByTestId('live-state').textContent()).toBe('Updating every 10 seconds');
  refuse = false;
  await poll(() => fleet.getByTestId('live-state').textContent(), 20_000).toBe('Live');
  // The first sample, then another one arriving live (no reload).
  await poll(() => card.getAttribute('data-sample'), 60_000).not.toBe('');
  const first = await card.getAttribute('data-sample');
  await poll(() => card.getByTestId('cpu').textContent(), 30_000).toMatch(/%$/);
  await poll(() => card.getAttribute('data-sample'), 45_000).not.toBe(first);
  // Reporting: online, or degraded when this machine's own disk is ≥ 95 % full (the rule is
  // the status, not the machine's state: unit-tested in tests/monitoring.rs).
  expect(await card.getByText(/^(Online|Degraded)$/).count()).toBe(1);
  await shot(page, '80-dashboard-fleet');

  // Filters and the table view.
  await fleet.getByLabel('Tag').selectOption('db');
  await card.waitFor({ state: 'detached' });
  await fleet.getByLabel('Tag').selectOption('');
  await fleet.getByLabel('Status').selectOption('unknown');
  await fleet.locator('[data-testid="fleet-card"]').filter({ hasText: 'quiet-1' }).waitFor();
  await fleet.getByLabel('Status').selectOption('');
  await fleet.getByRole('button', { name: 'Table' }).click();
  const row = fleet.locator(`[data-testid="fleet-row"][data-server="${server.id}"]`);
  await row.waitFor();
  await fleet.getByRole('button', { name: 'Cards' }).click();

  // The server's page: charts drawn on canvases.
  await card.getByRole('link', { name: 'mon-1' }).click();
  const metrics = page.getByRole('region', { name: 'Metrics' });
  const cpuChart = metrics.getByRole('img', { name: 'CPU', exact: true });
  await cpuChart.locator('canvas').waitFor({ timeout: 30_000 });
  await poll(
    () =>
      cpuChart.locator('canvas').evaluate((c: HTMLCanvasElement) => {
        const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++;
        return painted > 100;
      }),
    10_000,
  ).toBe(true);
  // A chart for each metric group this host has; a group it lacks (systemd units where systemd
  // does not run) is left out rather than drawn empty.
  for (const name of ['Network', 'CPU per core', 'Inodes used', 'Network packets', 'Network errors', 'Processes']) {
    await metrics.getByRole('img', { name, exact: true }).waitFor();
  }
  if (!existsSync('/run/systemd/system')) expect(await metrics.getByRole('img', { name: 'Failed systemd units' }).count()).toBe(0);
  await metrics.getByRole('button', { name: '24 hours' }).click();
  await cpuChart.locator('canvas').waitFor();
  await metrics.getByRole('button', { name: 'Live', exact: true }).click();
  await poll(() => metrics.getByRole('button', { name: 'Live', exact: true }).getAttribute('aria-pressed')).toBe('true');
  await shot(page, '81-server-metrics');
  expect(problems).toEqual([]);
  await context.close();
});

test('Chromium and the live socket agree on permessage-deflate, both ways', async () => {
  expect(serverId).not.toBe('');
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  // A socket of the page's own, not routed through the test: the browser offers the extension,
  // sends its subscription compressed, and inflates the hub's compressed snapshot.
  const got = await page.evaluate(
    () =>
      new Promise<{ extensions: string; type: string; servers: number }>((resolve, reject) => {
        const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/api/v1/live`);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', fleet: true }));
        ws.onmessage = (e: MessageEvent<string>) => {
          const m = JSON.parse(e.data) as { type: string; servers?: unknown[] };
          resolve({ extensions: ws.extensions, type: m.type, servers: m.servers?.length ?? 0 });
          ws.close();
        };
        ws.onerror = () => reject(new Error('the live socket failed'));
        setTimeout(() => reject(new Error('no message within 10 s')), 10_000);
      }),
  );
  expect(got.extensions).toContain('permessage-deflate');
  expect(got.type).toBe('snapshot');
  expect(got.servers).toBeGreaterThanOrEqual(2);
  expect(problems).toEqual([]);
  await context.close();
});

test('the fleet overview and the metrics section meet WCAG 2.1 AA in both themes', async () => {
  expect(serverId).not.toBe('');
  // The page's CSP forbids injected scripts; this context bypasses it for the audit only.
  const { context } = await newContext(browser, { bypassCSP: true });
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  for (const theme of ['light', 'dark']) {
    await page.evaluate((t) => localStorage.setItem('steward.theme', t), theme);
    for (const path of ['/', `/servers/${serverId}`]) {
      await page.goto(`${steward.url}${path}`);
      await page.locator(path === '/' ? '[data-testid="fleet-card"]' : '[data-testid="metric-chart"] canvas').first().waitFor({ timeout: 30_000 });
      expect(await a11yViolations(page), `${theme} ${path}`).toEqual([]);
    }
  }
  await context.close();
});
