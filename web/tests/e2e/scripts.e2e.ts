// Scripts and runs against a real steward and a real OpenSSH server: a script written in the
// CodeMirror editor with a parameter, saved twice (two versions in the history), run on a
// reachable server and on a closed port (1 ok / 1 error, the parameter's value in the
// output), an ad-hoc command behind a step-up, a cancelled `sleep 60`, the run history and
// its status filter, and the jump-server field. Then what issue 13 changed: a script changed
// by someone else while the run dialog was open (the diff, then the new version), a secret
// parameter (typed hidden, shown as ***, masked in the output), a save of a new body behind a
// step-up, and a writer limited to a tag who may not change an organization's script.
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

/** A new session for the same user: no step-up proven yet (one lasts ten minutes). */
async function freshSession(page: Page, username = 'admin', password = PASSWORD): Promise<void> {
  await page.context().clearCookies();
  await loginToDashboard(page, steward, username, password);
}

/** A user with a role of these permissions (limited to `tags`, if given), logged in in a new
 *  browser context with their first password already replaced by `password`. */
async function userPage(admin: Page, username: string, password: string, permissions: string[], tags?: string[]) {
  await apiCall(admin, 'POST', '/api/v1/roles', { name: `${username} role`, permissions, ...(tags ? { server_tags: tags } : {}) });
  await apiCall(admin, 'POST', '/api/v1/users', { username, password: 'initial-lantern-forest-7', roles: [`${username} role`] });
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await login(page, steward, username, 'initial-lantern-forest-7');
  await page.waitForURL((u) => u.pathname === '/profile/security');
  await page.getByLabel('Current password').fill('initial-lantern-forest-7');
  await page.getByLabel('New password').fill(password);
  await page.getByLabel('Repeat password').fill(password);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  return { context, page, problems };
}

/** The id of the server with this name. */
async function serverId(page: Page, name: string): Promise<string> {
  const list = (await apiCall(page, 'GET', `/api/v1/servers?q=${encodeURIComponent(name)}`)) as { items: { id: string; name: string }[] };
  const found = list.items.find((x) => x.name === name);
  if (!found) throw new Error(`no server ${name}`);
  return found.id;
}

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
  // A new script changes what can run: the password first, then the save goes through.
  const saveStepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
  await saveStepUp.getByLabel('Your password').fill(PASSWORD);
  await saveStepUp.getByRole('button', { name: 'Confirm' }).click();
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

  // An ad-hoc command needs a step-up, then runs by itself (in a new session: the one above
  // proved itself when saving).
  await freshSession(page);
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
  const script = (await apiCall(page, 'POST', '/api/v1/scripts', { name: 'uptime', body: 'uptime\n', step_up: { password: PASSWORD } })) as { id: string };
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
    step_up: { password: PASSWORD },
  })) as { id: string };
  // The inline proof counts for this session too; the run below starts in a new one.
  await freshSession(page);

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

test('a script changed by someone else while the run dialog was open: the diff, then the new version', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const app = await serverId(page, 'app-1');
  const script = (await apiCall(page, 'POST', '/api/v1/scripts', {
    name: 'deploy',
    body: 'echo start\necho "old step"\necho end\n',
    step_up: { password: PASSWORD },
  })) as { id: string; version: number };
  const editor = await userPage(page, 'editor', 'amber-canyon-lantern-31', ['servers.read', 'scripts.run', 'scripts.write']);
  await freshSession(page);

  await page.goto(`${steward.url}/scripts/${script.id}`);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Run deploy' });
  await dialog.getByLabel('Search servers').fill('app-1');
  await dialog.getByLabel('app-1', { exact: false }).check();
  // We wrote version 1: no notice that it is unreviewed; the dialog says who saved it last.
  expect(await dialog.getByText('You have not run this version yet', { exact: false }).count()).toBe(0);
  expect(await dialog.getByTestId('script-last-change').textContent()).toContain('Version 1, last saved by admin on');

  // Meanwhile someone else changes what the script does.
  await apiCall(editor.page, 'PUT', `/api/v1/scripts/${script.id}`, {
    name: 'deploy',
    body: 'echo start\necho "new step"\necho end\n',
    base_version: 1,
    step_up: { password: 'amber-canyon-lantern-31' },
  });

  await dialog.getByRole('button', { name: 'Start run' }).click();
  const changed = dialog.getByRole('alert').filter({ hasText: 'The script changed since you opened it' });
  await changed.getByText('version 1 is now version 2').waitFor();
  await changed.getByText('Saved by editor', { exact: false }).waitFor();
  const diff = dialog.getByTestId('script-diff');
  await poll(() => diff.textContent()).toContain('-echo "old step"');
  expect(await diff.textContent()).toContain('+echo "new step"');
  // Added and removed lines are coloured apart from the unchanged ones.
  const colours = await diff.evaluate((el) => {
    const bg = (sel: string) => getComputedStyle(el.querySelector(sel)!).backgroundColor;
    return { add: bg('.diff-add'), del: bg('.diff-del'), same: bg('.diff-same') };
  });
  expect(new Set([colours.add, colours.del, colours.same]).size).toBe(3);
  // Nothing ran: still on the script's page.
  expect(new URL(page.url()).pathname).toBe(`/scripts/${script.id}`);
  await shot(page, '71-run-script-changed');

  // Run the new version: someone else wrote it, so it is unreviewed and needs the password.
  await dialog.getByRole('button', { name: 'Run version 2' }).click();
  const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.waitFor();
  await dialog.getByText('You have not run this version yet; you will be asked to confirm it is you.').waitFor();
  await stepUp.getByLabel('Your password').fill(PASSWORD);
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await poll(() => chip(page, 'ok'), 30_000).toBe('1 ok');
  await poll(() => page.getByTestId(`stdout-${app}`).textContent()).toBe('start\nnew step\nend\n');
  const ran = (await apiCall(page, 'GET', `/api/v1/executions/${page.url().split('/').pop()}`)) as { script_version: number };
  expect(ran.script_version).toBe(2);

  // Again, and this time the parameters change too: the new version's form is shown first.
  await page.goto(`${steward.url}/scripts/${script.id}`);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await dialog.getByLabel('Search servers').fill('app-1');
  await dialog.getByLabel('app-1', { exact: false }).check();
  await apiCall(editor.page, 'PUT', `/api/v1/scripts/${script.id}`, {
    name: 'deploy',
    body: 'echo "stage $STAGE"\n',
    parameters: [{ name: 'STAGE', label: 'Stage', type: 'string', required: true, default: 'blue' }],
    base_version: 2,
    step_up: { password: 'amber-canyon-lantern-31' },
  });
  await dialog.getByRole('button', { name: 'Start run' }).click();
  await dialog.getByText('version 2 is now version 3').waitFor();
  await dialog.getByText('Its parameters changed: check the form before starting.').waitFor();
  // How they changed: the new definition is an added line.
  expect(await dialog.getByTestId('parameters-diff').textContent()).toContain('+{"name":"STAGE"');
  await dialog.getByRole('button', { name: 'Run version 3' }).click();
  // Not started yet: the new parameter is there, with its default, and the notice stays.
  expect(await dialog.getByLabel('Stage *').inputValue()).toBe('blue');
  await dialog.getByText('Its parameters changed: check the form before starting.').waitFor();
  expect(new URL(page.url()).pathname).toBe(`/scripts/${script.id}`);
  await dialog.getByRole('button', { name: 'Start run' }).click();
  // (This session proved itself a moment ago: no second password.)
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await poll(() => chip(page, 'ok'), 30_000).toBe('1 ok');
  await poll(() => page.getByTestId(`stdout-${app}`).textContent()).toBe('stage blue\n');

  expect([...problems, ...editor.problems]).toEqual([]);
  await editor.context.close();
  await context.close();
});

test('a secret parameter: typed hidden, shown as *** on the run, masked in the output', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const app = await serverId(page, 'app-1');
  const SECRET = 'Sup3r-s3cret-Value';

  // Written in the editor: the secret type has no default.
  await page.goto(`${steward.url}/scripts/new`);
  await page.getByLabel('Name', { exact: true }).fill('use-token');
  const body = page.getByTestId('script-body');
  await body.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await page.keyboard.type('echo "token is $TOKEN"\necho "length ${#TOKEN}"\n');
  await page.getByRole('button', { name: 'Add parameter' }).click();
  await page.getByLabel('Variable name').fill('TOKEN');
  await page.getByLabel('Label', { exact: true }).fill('API token');
  await page.getByLabel('Type').selectOption('secret');
  expect(await page.getByLabel('Default', { exact: true }).count()).toBe(0);
  await page.getByText('A secret has no default', { exact: false }).waitFor();
  await page.getByLabel('Required').check();
  await page.getByRole('button', { name: 'Save' }).click();
  const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.getByLabel('Your password').fill(PASSWORD);
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('Script created.').waitFor();
  await page.getByRole('heading', { level: 1, name: 'use-token' }).waitFor();

  await page.getByRole('button', { name: 'Run', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Run use-token' });
  await dialog.getByLabel('Search servers').fill('app-1');
  await dialog.getByLabel('app-1', { exact: false }).check();
  // Required, like a text parameter.
  await dialog.getByRole('button', { name: 'Start run' }).click();
  await dialog.getByText('This field is required.', { exact: false }).first().waitFor();
  const field = dialog.getByLabel('API token *');
  expect(await field.getAttribute('type')).toBe('password');
  expect(await field.getAttribute('autocomplete')).toBe('off');
  await field.fill(SECRET);
  await shot(page, '72-run-secret-parameter');
  await dialog.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  await poll(() => chip(page, 'ok'), 30_000).toBe('1 ok');
  await poll(() => page.getByTestId(`stdout-${app}`).textContent()).toBe(`token is ***\nlength ${SECRET.length}\n`);
  const shown = page.getByTestId('param-TOKEN');
  expect(await shown.textContent()).toBe('TOKEN=***hidden');
  await shot(page, '73-run-secret-hidden');
  expect(await page.content()).not.toContain(SECRET);
  // Opened afresh, from what was stored: still nowhere.
  await page.reload();
  await poll(() => page.getByTestId(`stdout-${app}`).textContent()).toBe(`token is ***\nlength ${SECRET.length}\n`);
  expect(await page.content()).not.toContain(SECRET);
  const run = (await apiCall(page, 'GET', `/api/v1/executions/${page.url().split('/').pop()}`)) as unknown;
  expect(JSON.stringify(run)).not.toContain(SECRET);

  expect(problems).toEqual([]);
  await context.close();
});

test('saving a new body asks for the password, then saves', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const script = (await apiCall(page, 'POST', '/api/v1/scripts', { name: 'rotate', body: 'echo rotate\n', step_up: { password: PASSWORD } })) as { id: string };
  await freshSession(page);
  await page.goto(`${steward.url}/scripts/${script.id}`);
  await page.getByRole('heading', { level: 1, name: 'rotate' }).waitFor();
  const body = page.getByTestId('script-body');
  await body.click();
  await page.keyboard.press('ControlOrMeta+End');
  await page.keyboard.type('echo rotated\n');
  await page.getByRole('button', { name: 'Save' }).click();
  const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.waitFor();
  await shot(page, '74-save-step-up');
  // Closing the dialog saves nothing.
  await stepUp.getByRole('button', { name: 'Cancel' }).click();
  await stepUp.waitFor({ state: 'detached' }).catch(() => stepUp.waitFor({ state: 'hidden' }));
  expect(((await apiCall(page, 'GET', `/api/v1/scripts/${script.id}`)) as { version: number }).version).toBe(1);
  // Saving again asks again; with the password, version 2 is saved with the new body.
  await page.getByRole('button', { name: 'Save' }).click();
  await stepUp.getByLabel('Your password').fill(PASSWORD);
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('Saved as version 2.').waitFor();
  const saved = (await apiCall(page, 'GET', `/api/v1/scripts/${script.id}`)) as { version: number; body: string };
  expect(saved.version).toBe(2);
  expect(saved.body).toBe('echo rotate\necho rotated\n');
  expect(problems).toEqual([]);
  await context.close();
});

test('a writer limited to the tag web cannot change an organization script, and owns new ones by web', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const org = (await apiCall(page, 'POST', '/api/v1/scripts', { name: 'org-wide', body: 'echo everyone\n', step_up: { password: PASSWORD } })) as { id: string };
  const web = await userPage(page, 'webwriter', 'silver-orchard-kettle-58', ['servers.read', 'scripts.run', 'scripts.write'], ['web']);
  const p = web.page;

  // The organization's script: readable, runnable, not changeable.
  await p.goto(`${steward.url}/scripts/${org.id}`);
  await p.getByRole('heading', { level: 1, name: 'org-wide' }).waitFor();
  await p.getByText('Read-only.', { exact: false }).waitFor();
  await p.getByText('This script belongs to the whole organization', { exact: false }).waitFor();
  expect(await p.getByRole('button', { name: 'Save' }).count()).toBe(0);
  expect(await p.getByRole('button', { name: 'Delete' }).count()).toBe(0);
  expect(await p.getByRole('button', { name: 'Add parameter' }).count()).toBe(0);
  expect(await p.getByLabel('Name', { exact: true }).getAttribute('readonly')).not.toBeNull();
  await p.getByRole('button', { name: 'Run', exact: true }).waitFor();
  await shot(p, '75-script-not-yours');

  // A new script: owned by the tags the writer covers; the whole organization is not offered.
  await p.goto(`${steward.url}/scripts/new`);
  await p.getByRole('heading', { level: 1, name: 'New script' }).waitFor();
  const owner = p.getByRole('group', { name: 'Who may change and run it' });
  expect(await owner.getByLabel('The whole organization').isDisabled()).toBe(true);
  expect(await owner.getByLabel('Servers with these tags').isChecked()).toBe(true);
  await owner.getByRole('list', { name: 'Owner tags' }).getByText('web', { exact: true }).waitFor();
  // A tag outside the scope is refused before anything is sent.
  await owner.getByLabel('Add a tag').fill('db');
  await owner.getByRole('button', { name: 'Add', exact: true }).click();
  await owner.getByText('Only tags your scripts.write permission covers: web.').waitFor();
  await p.getByLabel('Name', { exact: true }).fill('web-only');
  await shot(p, '76-script-owner-tags');
  await p.getByRole('button', { name: 'Save' }).click();
  const stepUp = p.getByRole('dialog', { name: 'Confirm it is you' });
  await stepUp.getByLabel('Your password').fill('silver-orchard-kettle-58');
  await stepUp.getByRole('button', { name: 'Confirm' }).click();
  await p.getByText('Script created.').waitFor();
  const id = p.url().split('/').pop()!;
  expect(((await apiCall(p, 'GET', `/api/v1/scripts/${id}`)) as { owner_tags: string[] | null }).owner_tags).toEqual(['web']);
  // Theirs to change: no read-only notice.
  expect(await p.getByText('Read-only.', { exact: false }).count()).toBe(0);

  // Its run dialog says where it may run.
  await p.getByRole('button', { name: 'Run', exact: true }).click();
  await p.getByRole('dialog', { name: 'Run web-only' }).getByText('This script runs only on servers with one of the tags web;', { exact: false }).waitFor();
  await p.getByRole('dialog', { name: 'Run web-only' }).getByRole('button', { name: 'Cancel' }).click();

  // The library says who owns what.
  await p.goto(`${steward.url}/scripts`);
  const table = p.getByRole('table', { name: 'Scripts' });
  await table.getByRole('row', { name: /web-only/ }).getByText('web', { exact: true }).waitFor();
  await table.getByRole('row', { name: /org-wide/ }).getByText('Organization').waitFor();

  // The server refuses a change all the same (what the notice said).
  const refused = await p.evaluate(async (sid) => {
    const r = await fetch(`/api/v1/scripts/${sid}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'org-wide', body: 'echo mine\n', base_version: 1 }),
    });
    return { status: r.status, code: ((await r.json()) as { error: { code: string } }).error.code };
  }, org.id);
  expect(refused).toEqual({ status: 403, code: 'script_not_yours' });

  expect([...problems, ...web.problems]).toEqual([]);
  await web.context.close();
  await context.close();
});
