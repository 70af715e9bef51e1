// Repointing a server (security issue 13): a user who may edit a server but not its credential
// moves it elsewhere; the credential is detached and the host key forgotten, the server is
// marked unconfirmed in the list and on its page, nothing connects to it, and only someone who
// may manage its credentials confirms the endpoint (after proving it is them again).
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PASSWORD, apiCall, launchBrowser, loginToDashboard, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';
import { startSshd, type TestSshd } from './sshd';

const WRITER = 'wanda';
const WRITER_PASSWORD = 'copper-meadow-sailing-93';

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

test('an endpoint changed by someone who cannot vouch for it stays unconfirmed until credentials.write confirms it', async () => {
  // The administrator: a server with a working credential and a recorded host key, and a user
  // who may edit web servers but not their credentials.
  const admin = await newContext(browser);
  const adminPage = await admin.context.newPage();
  await loginToDashboard(adminPage, steward);
  const server = (await apiCall(adminPage, 'POST', '/api/v1/servers', {
    name: 'web-1',
    host: sshd.host,
    port: sshd.port,
    ssh_user: sshd.user,
    tags: ['web'],
  })) as { id: string };
  const credential = (await apiCall(adminPage, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'generate' })) as { public_key: string };
  sshd.authorize(credential.public_key);
  const first = (await apiCall(adminPage, 'POST', `/api/v1/servers/${server.id}/test-connection`)) as { error: unknown; host_key: { status: string } | null };
  expect(first.error).toBeNull();
  expect(first.host_key?.status).toBe('first_use');
  await apiCall(adminPage, 'POST', '/api/v1/roles', { name: 'web-writers', permissions: ['servers.read', 'servers.write'], server_tags: ['web'] });
  await apiCall(adminPage, 'POST', '/api/v1/users', { username: WRITER, password: WRITER_PASSWORD, roles: ['web-writers'], password_change_required: false });

  // The writer moves the server to another port.
  const writer = await newContext(browser);
  const page = await writer.context.newPage();
  await loginToDashboard(page, steward, WRITER, WRITER_PASSWORD);
  await page.goto(`${steward.url}/servers/${server.id}`);
  await page.getByRole('heading', { name: 'web-1', level: 1 }).waitFor();
  await page.getByTestId('host-key-fingerprint').waitFor();
  // Trust and credentials are not hers to manage.
  await expect(page.getByRole('button', { name: 'Set credential' }).count()).resolves.toBe(0);
  await page.getByRole('button', { name: 'Edit', exact: true }).click();
  const form = page.getByRole('dialog', { name: 'Edit server' });
  await form.getByText('You may add or remove only these tags: web').waitFor();
  await expect(form.getByRole('radio', { name: 'Generate a new key pair' }).count()).resolves.toBe(0);
  // Port 1: nothing listens there. (A neighbour's port could be another test's sshd, whose host
  // key the collector would then record once the endpoint is confirmed.)
  await form.getByLabel('Port').fill('1');
  await expect(form.getByTestId('endpoint-change-notice').textContent()).resolves.toContain('The credential will not be offered');
  await shot(page, '55-endpoint-change-detaches');
  await form.getByRole('button', { name: 'Save' }).click();
  await form.waitFor({ state: 'hidden' });
  const banner = page.getByTestId('endpoint-unconfirmed');
  await banner.getByText('Endpoint changed, not yet confirmed').waitFor();
  await banner.getByText("Ask someone allowed to manage this server's credentials to confirm it.").waitFor();
  await expect(banner.getByRole('button', { name: 'Confirm endpoint' }).count()).resolves.toBe(0);
  // The host key trusted for the old endpoint is forgotten.
  await page.getByText('Not known yet. It is recorded at the first connection.').waitFor();
  expect(writer.problems).toEqual([]);
  await writer.context.close();

  // The administrator sees it marked in the list, and nothing on the page connects to it.
  await adminPage.goto(`${steward.url}/servers`);
  const row = adminPage.getByRole('row', { name: /web-1/ });
  await row.getByText('unconfirmed').waitFor();
  await shot(adminPage, '56-servers-endpoint-unconfirmed');
  await row.getByRole('link', { name: 'web-1' }).click();
  const adminBanner = adminPage.getByTestId('endpoint-unconfirmed');
  await adminBanner.getByText(`${WRITER} changed the address`, { exact: false }).waitFor();
  await adminBanner.getByText(`${sshd.user}@${sshd.host}:${sshd.port}`).waitFor();
  await expect(adminPage.getByRole('link', { name: 'Open terminal' }).count()).resolves.toBe(0);
  await expect(adminPage.getByRole('button', { name: 'Run script' }).count()).resolves.toBe(0);
  await shot(adminPage, '57-server-endpoint-unconfirmed');
  // Confirming needs the password again; afterwards the banner is gone.
  await adminBanner.getByRole('button', { name: 'Confirm endpoint' }).click();
  const stepUp = adminPage.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.getByLabel('Your password').fill(PASSWORD);
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await poll(() => adminBanner.count()).toBe(0);
  // It now points at a port nobody listens on: the administrator puts it back, keeping the
  // credential (the notice says so), and the connection works with the stored key.
  await adminPage.getByRole('button', { name: 'Edit', exact: true }).click();
  const adminForm = adminPage.getByRole('dialog', { name: 'Edit server' });
  await adminForm.getByLabel('Port').fill(String(sshd.port));
  await expect(adminForm.getByTestId('endpoint-change-notice').textContent()).resolves.toContain('the credential and the trusted host key stay');
  await adminForm.getByRole('button', { name: 'Save' }).click();
  await adminForm.waitFor({ state: 'hidden' });
  // The page has reloaded the server (the host-key panel starts afresh with it) before the test.
  await adminPage.getByText(`${sshd.host}:${sshd.port}`, { exact: true }).waitFor();
  await adminPage.getByRole('button', { name: 'Test connection' }).click();
  await adminPage.getByText(`Connected and logged in as ${sshd.user}`).waitFor();
  await expect(adminPage.getByTestId('endpoint-unconfirmed').count()).resolves.toBe(0);
  expect(admin.problems).toEqual([]);
  await admin.context.close();
});
