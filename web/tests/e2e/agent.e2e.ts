// The agent of a server, from its page: enroll (token and install commands shown once), the
// real steward-agent binary connects with that token, the page shows it connected, revoke.
// And Install over SSH: a real sshd, a throwaway non-root account (so nothing is installed
// system-wide on the test machine), the step-up dialog, the steps, the agent connected,
// uninstall.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PASSWORD, WEB_DIR, apiCall, launchBrowser, loginToDashboard, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';
import { startSshd } from './sshd';

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
    // "not connected" contains "connected": wait for the state to start with it.
    return (await page.getByTestId('agent-state').textContent()) ?? '';
  }, 30_000).toMatch(/^connected/);
  await shot(page, '61-agent-connected');

  await page.getByRole('region', { name: 'Metric collection' }).getByRole('button', { name: 'Revoke agent' }).click();
  await page.getByRole('dialog', { name: 'Revoke agent' }).getByRole('button', { name: 'Revoke agent' }).click();
  await poll(() => page.getByTestId('monitoring-mode').textContent()).toBe('Agentless (over SSH)');
  expect(problems).toEqual([]);
  await context.close();
});

/** A throwaway Unix account with a password (needs root), removed with its home afterwards. */
function createAccount(): { name: string; password: string; remove: () => void } {
  const name = `stwe${Math.floor(Math.random() * 0xffffff).toString(16)}`;
  const password = `pw-${name}-Correct-Horse`;
  if (spawnSync('useradd', ['-m', '-s', '/bin/sh', name]).status !== 0) throw new Error(`useradd ${name} failed`);
  const chpasswd = spawnSync('chpasswd', { input: `${name}:${password}\n` });
  if (chpasswd.status !== 0) throw new Error('chpasswd failed');
  return {
    name,
    password,
    remove: () => {
      spawnSync('pkill', ['-KILL', '-u', name]);
      spawnSync('userdel', ['-r', name]);
    },
  };
}

test('install the agent over SSH (step-up, steps, connected), then uninstall it', async (ctx) => {
  if (process.getuid?.() !== 0) {
    ctx.skip();
    return;
  }
  const account = createAccount();
  const sshd = await startSshd({ extraConfig: ['PasswordAuthentication yes', 'Subsystem sftp internal-sftp'] });
  try {
    const { context, problems } = await newContext(browser);
    const page = await context.newPage();
    await loginToDashboard(page, steward);
    const server = (await apiCall(page, 'POST', '/api/v1/servers', {
      name: 'ssh-agent-host',
      host: sshd.host,
      port: sshd.port,
      ssh_user: account.name,
      metrics_interval_secs: 1,
    })) as { id: string };
    await apiCall(page, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'password', password: account.password });
    await page.goto(`${steward.url}/servers/${server.id}`);
    const panel = page.getByRole('region', { name: 'Metric collection' });
    await panel.getByRole('button', { name: 'Install over SSH' }).click();

    // The password again first, as for terminals.
    const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
    await stepUp.waitFor();
    await stepUp.getByLabel('Your password', { exact: true }).fill(PASSWORD);
    await stepUp.getByRole('button', { name: 'Confirm' }).click();

    const result = page.getByRole('dialog', { name: 'Install the agent over SSH' });
    await result.waitFor();
    // The steps show as they end, while the install still runs.
    await poll(
      async () =>
        (await result.locator('.spinner').count()) > 0 && ((await result.getByTestId('install-steps').textContent().catch(() => '')) ?? '').includes('Upload the agent (SFTP)'),
      30_000,
    ).toBe(true);
    // Done when the result (or an error) is shown.
    await poll(async () => /Installed \(|failed|Done/.test((await result.getByTestId('install-result').textContent()) ?? '') && !(await result.locator('.spinner').count()), 60_000).toBe(true);
    const text = (await result.getByTestId('install-result').textContent()) ?? '';
    expect(text).toContain('Installed (for the login user, background process)');
    await poll(() => result.getByTestId('install-agent-state').textContent(), 30_000).toBe('connected');
    const steps = (await result.getByTestId('install-steps').textContent()) ?? '';
    for (const step of ['Connect over SSH', 'Check the architecture', 'Upload the agent (SFTP)', 'Write the token (0600)', 'Start the agent', 'Start at boot (cron)']) {
      expect(steps).toContain(step);
    }
    expect(steps).not.toContain('failed');
    // Kept running by the launcher, started at boot by cron: nothing to warn about.
    await expect(result.textContent()).resolves.toContain('starts the agent again when it exits');
    await expect(result.textContent()).resolves.toContain('cron starts it at boot: @reboot');
    expect(await result.locator('.alert-warning').count()).toBe(0);
    await expect(result.textContent()).resolves.toContain(`/home/${account.name}/.local/bin/steward-agent`);
    await shot(page, '62-agent-installed-over-ssh');
    await result.getByRole('button', { name: 'Done' }).click();
    await poll(async () => (await panel.getByTestId('agent-state').textContent()) ?? '', 15_000).toMatch(/^connected/);
    await expect(panel.getByTestId('monitoring-mode').textContent()).resolves.toBe('Agent');

    // Uninstall: confirm, the steps, back to agentless.
    await panel.getByRole('button', { name: 'Uninstall agent' }).click();
    await page.getByRole('dialog', { name: 'Uninstall agent' }).getByRole('button', { name: 'Uninstall agent' }).click();
    const removed = page.getByRole('dialog', { name: 'Uninstall the agent' });
    await removed.getByText('The agent was stopped and removed, and its token revoked.').waitFor({ timeout: 60_000 });
    await expect(removed.getByTestId('install-steps').textContent()).resolves.toContain('Revoke the token');
    await removed.getByRole('button', { name: 'Done' }).click();
    await poll(() => panel.getByTestId('monitoring-mode').textContent()).toBe('Agentless (over SSH)');
    expect(existsSync(`/home/${account.name}/.local/bin/steward-agent`)).toBe(false);
    expect(problems).toEqual([]);
    await context.close();
  } finally {
    await sshd.stop();
    account.remove();
  }
});
