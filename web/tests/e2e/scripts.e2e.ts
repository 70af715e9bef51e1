// Scripts and runs against a real steward and a real OpenSSH server: a script written in the
// CodeMirror editor with a parameter, saved twice (two versions in the history), run on a
// reachable server and on a closed port (1 ok / 1 error, the parameter's value in the
// output), an ad-hoc command behind a step-up, a cancelled `sleep 60`, the run history and
// its status filter, and the jump-server field.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PASSWORD, apiCall, launchBrowser, login, loginToDashboard, logout, navLinks, totp, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';
import { startSshd, type TestSshd } from './sshd';

let steward: Steward;
let sshd: TestSshd;
let browser: Browser;
let keyDir: string;
/** More loopback addresses of the same sshd (it listens on at most 16 sockets): the 50
 *  servers of a fleet for the live view share them. */
const FLEET = Array.from({ length: 15 }, (_, i) => `127.0.0.${10 + i}`);

beforeAll(async () => {
  // A small output cap, so that a run can go over it.
  steward = await startSteward({ serveArgs: ['--execution-output-cap', '4096'] });
  await setupViaApi(steward);
  sshd = await startSshd({ extraAddresses: FLEET });
  browser = await launchBrowser();
  keyDir = mkdtempSync(join(tmpdir(), 'steward-e2e-key-'));
});

afterAll(async () => {
  await browser?.close();
  await sshd?.stop();
  await steward?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

/** A port on 127.0.0.2 that nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.2', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

/** The text of one summary chip on the run page ("1 ok", "1 error" …). */
const chip = (page: Page, group: string) => page.getByTestId(`count-${group}`).textContent();

test('write a script, run it on two servers, an ad-hoc command with step-up, cancel, history', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);

  // Two servers: one reachable with an uploaded private key, one on a closed port.
  const key = join(keyDir, 'id_ed25519');
  const gen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'steward-e2e', '-f', key]);
  expect(gen.status).toBe(0);
  sshd.authorize(readFileSync(`${key}.pub`, 'utf8'));
  const app = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'app-1', host: sshd.host, port: sshd.port, ssh_user: sshd.user, tags: ['web'] })) as { id: string };
  await apiCall(page, 'PUT', `/api/v1/servers/${app.id}/credential`, { kind: 'private_key', private_key: readFileSync(key, 'utf8') });
  const dead = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'dead-1', host: sshd.host, port: await closedPort(), ssh_user: sshd.user })) as { id: string };
  await apiCall(page, 'PUT', `/api/v1/servers/${dead.id}/credential`, { kind: 'private_key', private_key: readFileSync(key, 'utf8') });

  // The library is in the navigation; a new script is written in the editor.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Scripts' }).click();
  await page.getByRole('heading', { level: 1, name: 'Scripts' }).waitFor();
  await page.getByText('No scripts yet.').waitFor();
  await page.getByRole('link', { name: 'New script' }).click();
  await page.getByRole('heading', { level: 1, name: 'New script' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('greet');
  const editor = page.getByTestId('script-body');
  await editor.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await page.keyboard.type('# says hello\necho "hello $WHO"\necho "to stderr" >&2\n');
  await expect.poll(() => editor.textContent()).toContain('echo "hello $WHO"');
  // Highlighted: the comment and the string are coloured apart from plain text.
  const colours = () =>
    editor.evaluate((el) => {
      const spans = [...el.querySelectorAll('span')];
      const colourOf = (text: string) => {
        const s = spans.find((x) => x.textContent?.includes(text));
        return s ? getComputedStyle(s).color : null;
      };
      return { comment: colourOf('says hello'), string: colourOf('"hello'), plain: getComputedStyle(el).color };
    });
  // (The parse that colours the text may finish a moment after the typing.)
  await poll(async () => {
    const c = await colours();
    return !!c.comment && !!c.string && c.comment !== c.plain && c.string !== c.plain && c.string !== c.comment;
  }).toBe(true);

  await page.getByRole('button', { name: 'Add parameter' }).click();
  await page.getByLabel('Variable name').fill('WHO');
  await page.getByLabel('Label', { exact: true }).fill('Who to greet');
  await page.getByLabel('Default', { exact: true }).fill('world');
  await page.getByLabel('Required').check();
  await shot(page, '60-script-editor');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Script created.').waitFor();
  await page.waitForURL(/\/scripts\/[0-9a-f-]{36}$/);
  await page.getByRole('heading', { level: 1, name: 'greet' }).waitFor();
  const scriptId = page.url().split('/').pop()!;

  // A second save makes version 2; the history lists both, and version 1 can be viewed.
  await page.getByLabel('Description').fill('Says hello to someone');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved as version 2.').waitFor();
  const history = page.getByRole('region', { name: 'History' });
  await history.getByText('Version 2').waitFor();
  await history.getByText('Version 1').waitFor();
  await history.getByRole('button', { name: 'View version 1' }).click();
  const old = page.getByRole('dialog', { name: 'greet, version 1' });
  await old.waitFor();
  await expect.poll(() => old.getByTestId('version-body').textContent()).toContain('echo "hello $WHO"');
  await shot(page, '61-script-version');
  await old.getByRole('button', { name: 'Close' }).first().click();
  await old.waitFor({ state: 'detached' }).catch(() => old.waitFor({ state: 'hidden' }));

  // Someone else saves meanwhile: our save is refused with a clear conflict.
  const current = (await apiCall(page, 'GET', `/api/v1/scripts/${scriptId}`)) as Record<string, unknown>;
  await apiCall(page, 'PUT', `/api/v1/scripts/${scriptId}`, {
    name: current.name, description: 'Changed elsewhere', shell: current.shell, body: current.body, parameters: current.parameters, base_version: 2,
  });
  await page.getByLabel('Description').fill('My change');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Someone saved this script since you opened it.', { exact: false }).waitFor();
  await page.getByRole('button', { name: 'Load the saved version (discards your changes)' }).click();
  await poll(() => page.getByLabel('Description').inputValue()).toBe('Changed elsewhere');
  await history.getByText('Version 3').waitFor();

  // Run it on both servers.
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Run greet' });
  await dialog.waitFor();
  const who = dialog.getByLabel('Who to greet *');
  expect(await who.inputValue()).toBe('world');
  await who.fill('Steward');
  await dialog.getByLabel('app-1', { exact: false }).check();
  await dialog.getByLabel('dead-1', { exact: false }).check();
  await dialog.getByText('Selected: 2 servers, 0 tags').waitFor();
  await shot(page, '62-run-dialog');
  await dialog.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await poll(() => chip(page, 'ok'), 30_000).toBe('1 ok');
  await poll(() => chip(page, 'error')).toBe('1 error');
  await poll(() => chip(page, 'running')).toBe('0 running');
  const appPane = page.getByRole('region', { name: 'app-1' });
  await poll(() => appPane.getByTestId(`stdout-${app.id}`).textContent()).toBe('hello Steward\n');
  await poll(() => appPane.getByTestId(`stderr-${app.id}`).textContent()).toBe('to stderr\n');
  await appPane.getByText('exit code 0').waitFor();
  const deadPane = page.getByRole('region', { name: 'dead-1' });
  await deadPane.getByText('error', { exact: true }).waitFor();
  expect(await page.getByRole('progressbar', { name: 'Progress' }).getAttribute('value')).toBe('2');
  await page.getByText('2 of 2 done').waitFor();
  expect(await page.getByRole('button', { name: 'Cancel run' }).count()).toBe(0);
  // Filter the panes by status; collapse one.
  await page.getByTestId('count-error').click();
  await poll(() => page.getByTestId('host-pane').count()).toBe(1);
  await page.getByTestId('count-error').click();
  await poll(() => page.getByTestId('host-pane').count()).toBe(2);
  await appPane.getByRole('button', { name: 'app-1' }).click();
  expect(await appPane.getByRole('button', { name: 'app-1' }).getAttribute('aria-expanded')).toBe('false');
  await appPane.getByRole('button', { name: 'app-1' }).click();
  await shot(page, '63-run-live');

  // The same run, opened afresh after it finished, comes from the stored result.
  await page.reload();
  await poll(() => chip(page, 'ok')).toBe('1 ok');
  await poll(() => page.getByTestId(`stdout-${app.id}`).textContent()).toBe('hello Steward\n');

  // An ad-hoc command needs a step-up, then runs by itself.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).click();
  await page.getByRole('heading', { level: 1, name: 'Runs' }).waitFor();
  await page.getByRole('button', { name: 'Ad-hoc command' }).click();
  const adHoc = page.getByRole('dialog', { name: 'Run an ad-hoc command' });
  await adHoc.waitFor();
  await adHoc.getByLabel('Command', { exact: true }).fill('echo adhoc-$((40+2))');
  await adHoc.getByLabel('Search servers').fill('app');
  await adHoc.getByLabel('app-1', { exact: false }).check();
  await adHoc.getByRole('button', { name: 'Start run' }).click();
  const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.waitFor();
  await shot(page, '64-step-up');
  await stepUp.getByLabel('Your password').fill('wrong-password-entirely');
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await stepUp.getByText('The password or code is wrong.').waitFor();
  await stepUp.getByLabel('Your password').fill(PASSWORD);
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await page.getByRole('heading', { level: 1, name: 'Ad-hoc command' }).waitFor();
  await poll(() => chip(page, 'ok'), 30_000).toBe('1 ok');
  await poll(() => page.getByTestId(`stdout-${app.id}`).textContent()).toBe('adhoc-42\n');

  // A long command is cancelled from the run page.
  await page.goto(`${steward.url}/runs`);
  await page.getByRole('button', { name: 'Ad-hoc command' }).click();
  await adHoc.waitFor();
  await adHoc.getByLabel('Command', { exact: true }).fill('echo started; sleep 60');
  await adHoc.getByLabel('app-1', { exact: false }).check();
  await adHoc.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await poll(() => page.getByTestId(`stdout-${app.id}`).textContent(), 30_000).toBe('started\n');
  await poll(() => chip(page, 'running')).toBe('1 running');
  await shot(page, '65-run-running');
  await page.getByRole('button', { name: 'Cancel run' }).click();
  await poll(() => chip(page, 'cancelled'), 20_000).toBe('1 cancelled');
  await page.getByText('cancelled by admin').waitFor();
  await poll(() => page.getByRole('button', { name: 'Cancel run' }).count()).toBe(0);

  // The history lists the three runs and filters by status.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).click();
  const table = page.getByRole('table', { name: 'Runs' });
  await poll(() => table.locator('tbody tr').count()).toBe(3);
  await table.getByRole('link', { name: 'greet · Version 3' }).waitFor();
  await shot(page, '66-runs-history');
  await page.getByLabel('Status').selectOption('cancelled');
  await page.getByRole('button', { name: 'Apply' }).click();
  await poll(() => table.locator('tbody tr').count()).toBe(1);
  await table.getByText('1 cancelled').waitFor();
  await page.getByLabel('Status').selectOption('finished');
  await page.getByRole('button', { name: 'Apply' }).click();
  await poll(() => table.locator('tbody tr').count()).toBe(2);
  await page.getByLabel('Script', { exact: true }).selectOption({ label: 'greet' });
  await page.getByRole('button', { name: 'Apply' }).click();
  await poll(() => table.locator('tbody tr').count()).toBe(1);
  await table.getByRole('link', { name: 'greet · Version 3' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await poll(() => chip(page, 'error')).toBe('1 error');

  // The server page: recent runs, a jump server, and Run script with the server preselected.
  await page.goto(`${steward.url}/servers/${app.id}`);
  await page.getByRole('heading', { level: 1, name: 'app-1' }).waitFor();
  const recent = page.getByRole('table', { name: 'Recent runs' });
  await poll(() => recent.locator('tbody tr').count()).toBe(3);
  await page.goto(`${steward.url}/servers/${dead.id}`);
  await page.getByRole('heading', { level: 1, name: 'dead-1' }).waitFor();
  await page.getByText('None (direct connection)').waitFor();
  await page.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit server' });
  await edit.waitFor();
  await edit.getByLabel('Jump server').selectOption({ label: `app-1 (${sshd.host})` });
  await edit.getByRole('button', { name: 'Save' }).click();
  await edit.waitFor({ state: 'detached' }).catch(() => edit.waitFor({ state: 'hidden' }));
  await page.getByTestId('jump-server').getByText('app-1').waitFor();
  const saved = (await apiCall(page, 'GET', `/api/v1/servers/${dead.id}`)) as { jump_server_id: string | null };
  expect(saved.jump_server_id).toBe(app.id);
  await shot(page, '67-server-jump-and-runs');
  await page.getByRole('button', { name: 'Run script' }).click();
  const fromServer = page.getByRole('dialog', { name: 'Run a script' });
  await fromServer.waitFor();
  expect(await fromServer.getByLabel('dead-1', { exact: false }).isChecked()).toBe(true);
  await fromServer.getByLabel('Script', { exact: true }).selectOption({ label: 'greet' });
  // The title follows the chosen script, and its parameters appear.
  const chosen = page.getByRole('dialog', { name: 'Run greet' });
  await chosen.getByLabel('Who to greet *').waitFor();
  await chosen.getByRole('button', { name: 'Cancel' }).click();
  await page.getByTestId('jump-server').click();
  await page.getByRole('heading', { level: 1, name: 'app-1' }).waitFor();

  // Output over the cap is cut, and the pane says where.
  await page.goto(`${steward.url}/runs`);
  await page.getByRole('button', { name: 'Ad-hoc command' }).click();
  await adHoc.getByLabel('Command', { exact: true }).fill("head -c 10000 /dev/zero | tr '\\0' x");
  await adHoc.getByLabel('app-1', { exact: false }).check();
  await adHoc.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await poll(() => chip(page, 'ok'), 30_000).toBe('1 ok');
  await page.getByText('stdout: output cut at 4096 of 10000 bytes').waitFor();
  expect((await page.getByTestId(`stdout-${app.id}`).textContent())?.length).toBe(4096);
  await shot(page, '69-run-output-cut');

  // Deleting the script asks first; past runs keep its name.
  await page.goto(`${steward.url}/scripts/${scriptId}`);
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete script' }).getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('heading', { level: 1, name: 'Scripts' }).waitFor();
  await page.getByText('No scripts yet.').waitFor();

  expect(problems).toEqual([]);
  await context.close();
});

test('without scripts.write the library is read-only; without scripts.run there is no Run', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const script = (await apiCall(page, 'POST', '/api/v1/scripts', { name: 'uptime', body: 'uptime\n' })) as { id: string };
  await apiCall(page, 'POST', '/api/v1/roles', { name: 'runner', permissions: ['servers.read', 'scripts.run'] });
  await apiCall(page, 'POST', '/api/v1/users', { username: 'runner', password: 'initial-lantern-forest-7', roles: ['runner'] });
  await logout(page);
  // First login: the initial password is replaced first.
  await login(page, steward, 'runner', 'initial-lantern-forest-7');
  await page.waitForURL((u) => u.pathname === '/profile/security');
  await page.getByLabel('Current password').fill('initial-lantern-forest-7');
  await page.getByLabel('New password').fill('quiet-meadow-copper-19');
  await page.getByLabel('Repeat password').fill('quiet-meadow-copper-19');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  expect(await navLinks(page)).toEqual(['Dashboard', 'Servers', 'Checks', 'Scripts', 'Runs']);
  await page.goto(`${steward.url}/scripts/${script.id}`);
  await page.getByRole('heading', { level: 1, name: 'uptime' }).waitFor();
  await page.getByRole('button', { name: 'Run', exact: true }).waitFor();
  expect(await page.getByRole('button', { name: 'Save' }).count()).toBe(0);
  expect(await page.getByRole('button', { name: 'Delete' }).count()).toBe(0);
  expect(await page.getByRole('link', { name: 'New script' }).count()).toBe(0);
  expect(problems).toEqual([]);
  await context.close();
});

test('the live view follows a run on 50 servers', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const key = join(keyDir, 'fleet_ed25519');
  expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]).status).toBe(0);
  sshd.authorize(readFileSync(`${key}.pub`, 'utf8'));
  const privateKey = readFileSync(key, 'utf8');
  await page.evaluate(
    async ([addresses, port, user, pk]) => {
      const post = async (method: string, path: string, body: unknown) => {
        const r = await fetch(path, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
        return r.json();
      };
      const hosts = addresses as string[];
      for (let i = 0; i < 50; i++) {
        const host = hosts[i % hosts.length];
        const s = (await post('POST', '/api/v1/servers', { name: `fleet-${String(i + 1).padStart(2, '0')}`, host, port, ssh_user: user, tags: ['fleet'] })) as { id: string };
        await post('PUT', `/api/v1/servers/${s.id}/credential`, { kind: 'private_key', private_key: pk });
      }
    },
    [FLEET, sshd.port, sshd.user, privateKey] as const,
  );
  const script = (await apiCall(page, 'POST', '/api/v1/scripts', {
    name: 'chatty',
    body: 'i=1\nwhile [ $i -le 300 ]; do echo "line $i"; i=$((i+1)); done\necho done >&2\n',
  })) as { id: string };

  await page.goto(`${steward.url}/scripts/${script.id}`);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Run chatty' });
  await dialog.getByLabel('fleet (50)').check();
  await dialog.getByLabel('Servers at once').fill('50');
  await dialog.getByRole('button', { name: 'Start run' }).click();
  // More than ten servers: a step-up first (this is a new session).
  const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.getByLabel('Your password').fill(PASSWORD);
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  const started = Date.now();
  await poll(() => chip(page, 'ok'), 90_000).toBe('50 ok');
  const took = Date.now() - started;
  expect(await page.getByTestId('host-pane').count()).toBe(50);
  // Every pane has all its output, in order.
  const texts = await page.locator('[data-testid^="stdout-"]').allTextContents();
  expect(texts).toHaveLength(50);
  const expected = Array.from({ length: 300 }, (_, i) => `line ${i + 1}\n`).join('');
  expect(texts.filter((t) => t === expected)).toHaveLength(50);
  await page.getByText('50 of 50 done').waitFor();
  // The page stayed responsive: a click is answered at once.
  const t0 = Date.now();
  await page.getByRole('button', { name: 'Collapse all' }).click();
  await poll(() => page.locator('.pane-body:not([hidden])').count()).toBe(0);
  expect(Date.now() - t0).toBeLessThan(5_000);
  console.log(`50-host run shown finished after ${took} ms`);
  await shot(page, '68-run-50-hosts');
  expect(problems).toEqual([]);
  await context.close();
});

test('with 2FA on, the step-up asks for an authentication code', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  await apiCall(page, 'POST', '/api/v1/roles', { name: 'code runner', permissions: ['servers.read', 'scripts.run'] });
  await apiCall(page, 'POST', '/api/v1/users', { username: 'coder', password: 'initial-lantern-forest-7', roles: ['code runner'] });
  await logout(page);
  await login(page, steward, 'coder', 'initial-lantern-forest-7');
  await page.waitForURL((u) => u.pathname === '/profile/security');
  await page.getByLabel('Current password').fill('initial-lantern-forest-7');
  await page.getByLabel('New password').fill('quiet-meadow-copper-19');
  await page.getByLabel('Repeat password').fill('quiet-meadow-copper-19');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  const { secret } = (await apiCall(page, 'POST', '/api/v1/auth/totp/enroll')) as { secret: string };
  await apiCall(page, 'POST', '/api/v1/auth/totp/confirm', { code: totp(secret) });

  await page.goto(`${steward.url}/runs`);
  await page.getByRole('button', { name: 'Ad-hoc command' }).click();
  const adHoc = page.getByRole('dialog', { name: 'Run an ad-hoc command' });
  await adHoc.getByLabel('Command', { exact: true }).fill('echo code-ok');
  await adHoc.getByLabel('Search servers').fill('app-1');
  await adHoc.getByLabel('app-1', { exact: false }).check();
  await adHoc.getByRole('button', { name: 'Start run' }).click();
  const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.getByLabel('Authentication code').waitFor();
  await stepUp.getByRole('button', { name: 'Use your password instead' }).waitFor();
  await shot(page, '70-step-up-totp');
  // The code of the next time step: the one used to confirm 2FA may not be used twice.
  await stepUp.getByLabel('Authentication code').fill(totp(secret, 1));
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await poll(() => chip(page, 'ok'), 30_000).toBe('1 ok');
  expect(await page.locator('[data-testid^="stdout-"]').first().textContent()).toBe('code-ok\n');
  expect(problems).toEqual([]);
  await context.close();
});
