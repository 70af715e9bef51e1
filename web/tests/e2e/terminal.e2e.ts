// The web terminal against a real OpenSSH server: opening asks for the password again, typed
// commands run in a real shell, a second tab is its own session, and the recordings page lists
// the sessions and replays one.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PASSWORD, apiCall, launchBrowser, loginToDashboard, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';
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

/** The lines an xterm screen shows, read from its DOM rows. */
async function screen(page: Page, selector: string): Promise<string[]> {
  return page.evaluate(
    (sel) => Array.from(document.querySelectorAll(`${sel} .xterm-rows > div`)).map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()),
    selector,
  );
}

test('open a terminal (with step-up), run a command, open a second tab, replay the recording', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await loginToDashboard(page, steward);
  const server = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'box-1', host: sshd.host, port: sshd.port, ssh_user: sshd.user })) as { id: string };
  const credential = (await apiCall(page, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'generate' })) as { public_key: string };
  sshd.authorize(credential.public_key);

  await page.goto(`${steward.url}/servers/${server.id}`);
  await page.getByRole('link', { name: 'Open terminal' }).click();
  await page.getByRole('heading', { level: 1, name: 'Terminal on box-1' }).waitFor();

  // The server wants the password again before a terminal opens.
  const dialog = page.getByRole('dialog', { name: 'Confirm it is you' });
  await dialog.waitFor();
  await shot(page, '60-terminal-step-up');
  await dialog.getByLabel('Your password', { exact: true }).fill('wrong-password-123');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await dialog.getByText('The password or code is wrong.').waitFor();
  await dialog.getByLabel('Your password', { exact: true }).fill(PASSWORD);
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('Connected. Everything shown here is recorded.').waitFor();

  await page.locator('#terminal-1 .xterm').click();
  await page.keyboard.type('echo hi');
  await page.keyboard.press('Enter');
  await poll(async () => (await screen(page, '#terminal-1')).includes('hi')).toBe(true);
  await shot(page, '61-terminal');

  // A second tab is a session of its own (the step-up still counts).
  await page.getByRole('button', { name: 'New tab' }).click();
  await page.getByRole('tab', { name: 'Session 2' }).waitFor();
  expect(await page.getByRole('tab', { name: 'Session 2' }).getAttribute('aria-selected')).toBe('true');
  await page.getByText('Connected. Everything shown here is recorded.').waitFor();
  await page.keyboard.type('echo second-$((40+2))');
  await page.keyboard.press('Enter');
  await poll(async () => (await screen(page, '#terminal-2')).includes('second-42')).toBe(true);
  // The first tab is still there, unchanged.
  await page.getByRole('tab', { name: 'Session 1' }).click();
  expect(await screen(page, '#terminal-1')).toContain('hi');
  // Closing a tab ends its session only.
  await page.getByRole('tab', { name: 'Session 2' }).click();
  await page.getByRole('button', { name: 'Close session 2' }).click();
  await page.getByRole('tab', { name: 'Session 2' }).waitFor({ state: 'detached' });
  await page.getByRole('tab', { name: 'Session 1', selected: true }).waitFor();

  // The recordings list both sessions (ended when the page closed them); the player replays.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Recordings' }).click();
  await page.getByRole('heading', { level: 1, name: 'Recordings' }).waitFor();
  await poll(async () => page.getByRole('row').filter({ hasText: 'box-1' }).count()).toBe(2);
  await shot(page, '62-recordings');
  const rows = page.getByRole('row').filter({ hasText: 'box-1' });
  // Newest first: the first session is the second row.
  const download = await rows.nth(1).getByRole('link', { name: 'Download' }).getAttribute('href');
  expect(download).toMatch(/^\/api\/v1\/terminal-sessions\/[0-9a-f-]+\/recording$/);
  await rows.nth(1).getByRole('link', { name: 'Play' }).click();
  await page.getByRole('heading', { level: 1, name: 'Recording: admin on box-1' }).waitFor();
  await page.getByLabel('Speed').selectOption('8');
  await page.getByRole('button', { name: 'Play' }).click();
  await poll(async () => (await screen(page, '.player')).includes('hi')).toBe(true);
  expect(await page.getByLabel('Position in the recording').getAttribute('max')).not.toBeNull();
  await shot(page, '63-recording-player');

  // The downloaded file is the asciicast itself.
  const cast = await page.evaluate(async (url) => (await fetch(url)).text(), download!);
  expect(JSON.parse(cast.split('\n')[0]!)).toMatchObject({ version: 2 });
  expect(problems).toEqual([]);
  await context.close();
});

test('a recording that reaches its size limit says so, and too many terminals are refused with the reason', async () => {
  // A Steward of its own: recordings stop at 64 KiB, and a user holds at most two sockets.
  const capped = await startSteward({ serveArgs: ['--terminal-recording-cap', '65536', '--max-sockets-per-user', '2'] });
  try {
    await setupViaApi(capped);
    const { context, problems } = await newContext(browser);
    const page = await context.newPage();
    await loginToDashboard(page, capped);
    const server = (await apiCall(page, 'POST', '/api/v1/servers', { name: 'box-2', host: sshd.host, port: sshd.port, ssh_user: sshd.user })) as { id: string };
    const credential = (await apiCall(page, 'PUT', `/api/v1/servers/${server.id}/credential`, { kind: 'generate' })) as { public_key: string };
    sshd.authorize(credential.public_key);
    await apiCall(page, 'POST', '/api/v1/auth/step-up', { password: PASSWORD });

    await page.goto(`${capped.url}/servers/${server.id}/terminal`);
    await page.getByText('Connected. Everything shown here is recorded.').waitFor();
    await page.locator('#terminal-1 .xterm').click();
    // 100 000 bytes of output: more than the recording may hold.
    await page.keyboard.type("head -c 100000 /dev/zero | tr '\\0' x; echo; echo done-$((6*7))");
    await page.keyboard.press('Enter');
    await page.getByText('the recording stopped at its', { exact: false }).waitFor();
    await poll(async () => (await screen(page, '#terminal-1')).includes('done-42')).toBe(true);
    await shot(page, '64-terminal-recording-stopped');

    // Past the socket limit, a new tab is refused with a reason the user can act on.
    for (let i = 0; i < 3 && (await page.getByText('You have too many live connections open', { exact: false }).count()) === 0; i++) {
      await page.getByRole('button', { name: 'New tab' }).click();
      await page.waitForTimeout(500);
    }
    await page.getByText('You have too many live connections open', { exact: false }).waitFor();
    expect(await page.getByRole('tab').count()).toBeLessThanOrEqual(2);

    // The recordings page marks the capped recording.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Recordings' }).click();
    await page.getByRole('heading', { level: 1, name: 'Recordings' }).waitFor();
    await page.getByTestId('recording-capped').first().waitFor();
    expect(problems).toEqual([]);
    await context.close();
  } finally {
    await capped.stop();
  }
});
