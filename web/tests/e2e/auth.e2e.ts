// First-run setup, login with and without TOTP, and the return to where one was.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN, PASSWORD, launchBrowser, login, newContext, setupThroughUi, shot, startSteward, totp, type Steward } from './harness';

let steward: Steward;
let browser: Browser;

beforeAll(async () => {
  steward = await startSteward();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await steward?.stop();
});

test('first-run setup, then login with and without TOTP', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();

  // A fresh instance sends everyone to setup, which needs the token.
  await page.goto(steward.url);
  await page.waitForURL(/\/setup/);
  await shot(page, '01-setup');
  await page.getByLabel('Setup token').fill('wrong-token');
  await page.getByLabel('Username').fill(ADMIN);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Repeat password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await expect.poll(() => page.getByRole('alert').textContent()).toContain('The setup token is not valid');

  await setupThroughUi(page, steward);
  await shot(page, '02-dashboard');

  // Log out, then back in with the password alone.
  await page.getByRole('button', { name: ADMIN }).click();
  await page.getByRole('menuitem', { name: 'Log out' }).click();
  await page.waitForURL(/\/login/);
  await shot(page, '03-login');
  await login(page, steward, ADMIN, 'wrong-password-1');
  await expect.poll(() => page.getByRole('alert').textContent()).toContain('Wrong username or password');
  await login(page, steward, ADMIN, PASSWORD);
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();

  // Turn on 2FA: scan (read) the secret, confirm with a computed code, keep the recovery codes.
  await page.goto(`${steward.url}/profile/security`);
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  const secret = (await page.getByTestId('totp-secret').textContent())!.trim();
  await expect(page.getByRole('img', { name: 'QR code for your authenticator app' }).isVisible()).resolves.toBe(true);
  await shot(page, '04-totp-enroll');
  await page.getByLabel('Authentication code').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on' }).click();
  // The codes come after the server's answer, which takes a while on a busy machine.
  await page.getByTestId('recovery-codes').locator('li').first().waitFor();
  const codes = (await page.getByTestId('recovery-codes').locator('li').allTextContents()).map((c) => c.trim());
  expect(codes).toHaveLength(10);
  await page.getByRole('button', { name: 'I have saved them' }).click();

  // Deep link while logged out: login asks for the code and returns there.
  await page.getByRole('button', { name: ADMIN }).click();
  await page.getByRole('menuitem', { name: 'Log out' }).click();
  await page.waitForURL(/\/login/);
  await page.goto(`${steward.url}/profile/tokens`);
  await page.waitForURL(/\/login\?next=%2Fprofile%2Ftokens/);
  await page.getByLabel('Username').fill(ADMIN);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByLabel('Authentication code').fill(totp(secret, 1));
  await shot(page, '05-login-totp');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/profile\/tokens$/);
  await page.getByRole('heading', { name: 'API tokens' }).waitFor();

  expect(problems).toEqual([]);
  await context.close();
});
