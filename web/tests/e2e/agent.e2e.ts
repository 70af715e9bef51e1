// The agent of a server, from its page: enroll (token and install commands shown once), the
// real steward-agent binary connects with that token, the page shows it connected, revoke.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { WEB_DIR, apiCall, launchBrowser, loginToDashboard, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';

const AGENT = resolve(WEB_DIR, '../target/debug/steward-agent');

let steward: Steward;
let browser: Browser;
let agent: ChildProcess | undefined;
let dir: string | undefined;

beforeAll(async () => {
  if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: build it with \`cargo build -p steward-agent\``);
  steward = await startSteward();
  await setupViaApi(steward);
  browser = await launchBrowser();
});

afterAll(async () => {
  agent?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
  await browser?.close();
  await steward?.stop();
});

test('enroll an agent, see it connect, revoke it', async () => {
  const { context, problems } = await newContext(browser);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: steward.url });
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const server = (await apiCall(page, 'POST', '/api/v1/servers', {
    name: 'agent-host',
    host: '127.0.0.9',
    ssh_user: 'root',
    metrics_interval_secs: 1,
  })) as { id: string };
  await page.goto(`${steward.url}/servers/${server.id}`);
  const panel = page.getByRole('region', { name: 'Metric collection' });
  await expect(panel.getByTestId('monitoring-mode').textContent()).resolves.toBe('Agentless (over SSH)');

  await panel.getByRole('button', { name: 'Enroll agent' }).click();
  const dialog = page.getByRole('dialog', { name: 'Agent enrolled' });
  await dialog.waitFor();
  const token = (await dialog.getByTestId('agent-token').textContent())!.trim();
  expect(token).toMatch(/^stwa_/);
  const command = await dialog.getByTestId('install-command').textContent();
  expect(command).toContain(`--hub ${steward.url}`);
  expect(command).toContain('/etc/steward-agent/token');
  await dialog.getByRole('button', { name: 'Copy commands' }).click();
  await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toContain('steward-agent');
  await shot(page, '60-agent-enrolled');
  await dialog.getByRole('button', { name: 'Done' }).click();
  await expect(panel.getByTestId('monitoring-mode').textContent()).resolves.toBe('Agent');

  // The real agent, with the token from the page.
  dir = mkdtempSync(join(tmpdir(), 'steward-agent-e2e-'));
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  agent = spawn(AGENT, ['--hub', steward.url, '--token-file', join(dir, 'token'), '--interval', '1'], { stdio: 'ignore' });
  await poll(async () => {
    await page.reload();
    return (await page.getByTestId('agent-state').textContent()) ?? '';
  }, 30_000).toContain('connected');
  await expect(page.getByTestId('agent-state').textContent()).resolves.not.toContain('not connected');
  await shot(page, '61-agent-connected');

  await page.getByRole('region', { name: 'Metric collection' }).getByRole('button', { name: 'Revoke agent' }).click();
  await page.getByRole('dialog', { name: 'Revoke agent' }).getByRole('button', { name: 'Revoke agent' }).click();
  await poll(() => page.getByTestId('monitoring-mode').textContent()).toBe('Agentless (over SSH)');
  expect(problems).toEqual([]);
  await context.close();
});
