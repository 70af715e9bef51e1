// The audit log: what was done shows up, the filters narrow it, and the CSV export carries
// the same events.
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN, apiCall, launchBrowser, login, loginToDashboard, logout, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';

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

/** Each audit row as {actor, action, target, outcome}, newest first. */
async function auditRows(page: Page) {
  const rows = page.getByRole('table', { name: 'Audit log' }).locator('tbody tr');
  const out: { actor: string; action: string; target: string; outcome: string }[] = [];
  for (const row of await rows.all()) {
    const [, actor, action, target, outcome] = (await row.locator('td').allTextContents()).map((t) => t.trim());
    out.push({ actor: actor!, action: action!, target: target!, outcome: outcome! });
  }
  return out;
}

/** A minimal RFC 4180 reader: quoted cells may hold commas, quotes and newlines. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}

/** Clicks an export link and returns the downloaded file's name and text. */
async function download(page: Page, linkName: string): Promise<{ name: string; text: string }> {
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: linkName }).click()]);
  const failure = await file.failure();
  if (failure) throw new Error(`download failed: ${failure}`);
  return { name: file.suggestedFilename(), text: readFileSync(await file.path(), 'utf8') };
}

test('actions appear in the audit log, filters narrow it, and the CSV export holds them', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();

  // Some things worth recording: a failed login, a login, servers added, changed and removed.
  await login(page, steward, ADMIN, 'not-the-password-1');
  await poll(() => page.getByRole('alert').textContent()).toContain('Wrong username or password');
  await loginToDashboard(page, steward);
  const web = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'audit-web', host: '10.1.0.1', ssh_user: 'root', tags: ['web'] })) as { id: string };
  await apiCall(page, 'PUT', `/api/v1/servers/${web.id}/credential`, { kind: 'generate' });
  const db = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'audit-db', host: '10.1.0.2', ssh_user: 'root' })) as { id: string };
  await apiCall(page, 'DELETE', `/api/v1/servers/${db.id}`);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
  await poll(async () => (await auditRows(page)).map((r) => r.action)).toEqual(
    expect.arrayContaining(['server.delete', 'server.create', 'credential.generate', 'auth.login', 'setup.complete']),
  );
  const all = await auditRows(page);
  // Newest first.
  expect(all[0]).toEqual({ actor: ADMIN, action: 'server.delete', target: 'audit-db', outcome: 'Success' });
  expect(all).toContainEqual({ actor: ADMIN, action: 'server.create', target: 'audit-web', outcome: 'Success' });
  expect(all).toContainEqual({ actor: ADMIN, action: 'credential.generate', target: 'audit-web', outcome: 'Success' });
  expect(all.filter((r) => r.action === 'auth.login').map((r) => r.outcome).sort()).toEqual(['Failure', 'Success']);
  await shot(page, '30-audit');

  // Filter by action, exactly…
  const action = page.getByLabel('Action', { exact: true });
  await action.fill('server.create');
  await page.getByRole('button', { name: 'Apply' }).click();
  await poll(async () => (await auditRows(page)).map((r) => `${r.action} ${r.target}`)).toEqual([
    'server.create audit-db',
    'server.create audit-web',
  ]);
  await shot(page, '31-audit-filtered');

  // …or by prefix ("auth." is every login event), together with the outcome.
  await action.fill('auth.');
  await page.getByRole('button', { name: 'Apply' }).click();
  await poll(async () => (await auditRows(page)).map((r) => r.action)).toEqual(['auth.login', 'auth.login']);
  await page.getByLabel('Outcome').selectOption('failure');
  await page.getByRole('button', { name: 'Apply' }).click();
  await poll(async () => (await auditRows(page)).map((r) => `${r.action} ${r.outcome}`)).toEqual(['auth.login Failure']);

  // Nothing matches: the page says so.
  await action.fill('role.');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText('No events match.').waitFor();

  // The export follows the filters.
  await action.fill('server.');
  await page.getByLabel('Outcome').selectOption('');
  await page.getByRole('button', { name: 'Apply' }).click();
  await poll(async () => (await auditRows(page)).map((r) => r.action)).toEqual(['server.delete', 'server.create', 'server.create']);
  const filtered = await download(page, 'Export CSV');
  expect(filtered.name).toMatch(/^steward-audit-\d{8}T\d{6}Z\.csv$/);
  const filteredRows = parseCsv(filtered.text);
  const header = filteredRows[0]!;
  expect(header.slice(0, 3)).toEqual(['id', 'time', 'actor_id']);
  expect(filtered.text.startsWith('id,time,actor_id')).toBe(true);
  const col = (name: string) => header.indexOf(name);
  expect(filteredRows.slice(1).map((r) => r[col('action')])).toEqual(['server.delete', 'server.create', 'server.create']);

  // Clear: everything again, and the export has every event shown.
  await page.getByRole('button', { name: 'Clear' }).click();
  await expect(action.inputValue()).resolves.toBe('');
  await poll(async () => (await auditRows(page)).length).toBe(all.length);
  const everything = await download(page, 'Export CSV');
  expect(everything.text.startsWith('id,time,actor_id,')).toBe(true);
  const rows = parseCsv(everything.text);
  expect(rows.every((r) => r.length === header.length)).toBe(true);
  const events = rows.slice(1).map((r) => ({
    time: r[col('time')]!,
    actor: r[col('actor')]!,
    action: r[col('action')]!,
    target: r[col('target')]!,
    outcome: r[col('outcome')]!,
  }));
  expect(events.map((e) => e.action)).toEqual(all.map((r) => r.action));
  expect(events).toContainEqual(expect.objectContaining({ actor: ADMIN, action: 'server.create', target: 'audit-web', outcome: 'success' }));
  expect(events).toContainEqual(expect.objectContaining({ action: 'auth.login', outcome: 'failure' }));
  expect(events).toContainEqual(expect.objectContaining({ actor: ADMIN, action: 'auth.login', outcome: 'success' }));
  for (const e of events) expect(Number.isNaN(Date.parse(e.time))).toBe(false);

  // Logging out is recorded too.
  await logout(page);
  await loginToDashboard(page, steward);
  await page.goto(`${steward.url}/audit`);
  await poll(async () => (await auditRows(page)).slice(0, 2).map((r) => r.action)).toEqual(['auth.login', 'auth.logout']);

  expect(problems).toEqual([]);
  await context.close();
});
