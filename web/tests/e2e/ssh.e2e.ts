// The server page against a real OpenSSH server: testing the connection records the host key
// at first contact; a changed key is shown with both fingerprints and refused until accepted.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { apiCall, launchBrowser, loginToDashboard, newContext, setupViaApi, shot, startSteward, type Steward } from './harness';
import { startSshd, type TestSshd } from './sshd';

let steward: Steward;
let sshd: TestSshd;
let browser: Browser;

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

test('test connection, trust on first use, and a changed host key accepted by fingerprint', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const server = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'app-1', host: sshd.host, port: sshd.port, ssh_user: sshd.user })) as { id: string };
  const credential = (await apiCall(page, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'generate' })) as { public_key: string };
  sshd.authorize(credential.public_key);

  await page.goto(`${steward.url}/servers/${server.id}`);
  await page.getByText('Not known yet. It is recorded at the first connection.').waitFor();
  await page.getByRole('button', { name: 'Test connection' }).click();
  await page.getByText(`Connected and logged in as ${sshd.user}`).waitFor();
  await page.getByText(`First contact: the host key ${sshd.fingerprint()} was recorded.`).waitFor();
  expect(await page.getByTestId('host-key-fingerprint').textContent()).toBe(sshd.fingerprint());
  await shot(page, '50-server-host-key');

  // The server comes back with another key: refused, both fingerprints shown.
  const old = sshd.fingerprint();
  await sshd.restartWithNewHostKey();
  await page.getByRole('button', { name: 'Test connection' }).click();
  await page.getByText('The host key changed. No credential was sent.').waitFor();
  await page.getByText('The server presented a different host key.', { exact: false }).waitFor();
  expect(await page.getByTestId('presented-fingerprint').textContent()).toBe(sshd.fingerprint());
  expect(await page.getByTestId('host-key-fingerprint').textContent()).toBe(old);
  await shot(page, '51-server-host-key-changed');

  await page.getByRole('button', { name: 'Accept new key' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Accept new key' }).click();
  await expect.poll(() => page.getByTestId('host-key-fingerprint').textContent()).toBe(sshd.fingerprint());
  await page.getByText('Accepted after a change', { exact: false }).waitFor();
  await page.getByRole('button', { name: 'Test connection' }).click();
  await page.getByText(`Connected and logged in as ${sshd.user}`).waitFor();
  expect(problems).toEqual([]);
  await context.close();
});
