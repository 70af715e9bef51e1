// Sessions in the browser: a user sees where they are signed in and ends another device's
// session; an administrator ends another user's sessions and revokes their API token.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PASSWORD, apiCall, launchBrowser, loginToDashboard, newContext, poll, setupViaApi, startSteward, type Steward } from './harness';

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

/** Whether the page's session still works (the API answers `me`). */
async function signedIn(page: Page): Promise<boolean> {
  return page.evaluate(async () => (await fetch('/api/v1/auth/me')).ok);
}

test('a user ends the session of another device from the security page', async () => {
  const laptop = await newContext(browser, { userAgent: 'Laptop browser' });
  const phone = await newContext(browser, { userAgent: 'Phone browser' });
  const a = await laptop.context.newPage();
  const b = await phone.context.newPage();
  await loginToDashboard(a, steward);
  await loginToDashboard(b, steward);

  await a.goto(`${steward.url}/profile/security`);
  const sessions = a.getByTestId('sessions');
  await sessions.getByRole('heading', { name: 'Sessions' }).waitFor();
  const rows = sessions.getByTestId('session-row');
  await poll(() => rows.count()).toBe(2);
  const mine = rows.filter({ hasText: 'Laptop browser' });
  await mine.getByText('This session').waitFor();
  expect(await mine.getByRole('button', { name: 'End' }).count()).toBe(0);

  const other = rows.filter({ hasText: 'Phone browser' });
  await other.getByRole('button', { name: 'End' }).click();
  const confirm = a.getByRole('dialog', { name: 'End session' });
  await confirm.getByText('Phone browser (127.0.0.1) will be signed out at once.').waitFor();
  await confirm.getByRole('button', { name: 'End' }).click();
  await poll(() => rows.count()).toBe(1);
  expect(await signedIn(b)).toBe(false);
  expect(await signedIn(a)).toBe(true);
  expect([...laptop.problems, ...phone.problems]).toEqual([]);
  await laptop.context.close();
  await phone.context.close();
});

test('an administrator ends a user’s sessions and revokes their API token', async () => {
  const admin = await newContext(browser);
  const user = await newContext(browser, { userAgent: 'Bob laptop' });
  const a = await admin.context.newPage();
  const b = await user.context.newPage();
  await loginToDashboard(a, steward);
  await apiCall(a, 'POST', '/api/v1/users', { username: 'bob', password: PASSWORD, roles: ['viewer'], password_change_required: false });
  await loginToDashboard(b, steward, 'bob');
  await apiCall(b, 'POST', '/api/v1/api-tokens', { name: 'bob-script', permissions: ['servers.read'] });

  await a.goto(`${steward.url}/users`);
  const row = a.getByRole('row').filter({ hasText: 'bob' });
  await row.getByRole('button', { name: 'Sessions and tokens' }).click();
  const dialog = a.getByRole('dialog', { name: 'Sessions and API tokens of bob' });
  const tokens = dialog.getByTestId('user-tokens');
  await tokens.getByText('bob-script').waitFor();
  await tokens.getByRole('button', { name: 'Revoke' }).click();
  await a.getByRole('dialog', { name: 'Revoke' }).getByRole('button', { name: 'Revoke' }).click();
  await tokens.getByText('Revoked').waitFor();

  const sessions = dialog.getByTestId('sessions');
  await sessions.getByText('Bob laptop').waitFor();
  await sessions.getByRole('button', { name: 'End all sessions' }).click();
  const confirm = a.getByRole('dialog', { name: 'End all sessions' });
  await confirm.getByText('bob will be signed out everywhere.').waitFor();
  await confirm.getByRole('button', { name: 'End' }).click();
  await sessions.getByText('No active sessions.').waitFor();
  expect(await signedIn(b)).toBe(false);
  expect([...admin.problems, ...user.problems]).toEqual([]);
  await admin.context.close();
  await user.context.close();
});
