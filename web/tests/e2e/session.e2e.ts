// An ended session sends the user to the login page, and login brings them back.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN, PASSWORD, launchBrowser, newContext, setupThroughUi, startSteward, type Steward } from './harness';

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

test('an ended session returns to the login page, and login returns to where the user was', async () => {
  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await setupThroughUi(page, steward);
  await page.goto(`${steward.url}/audit`);
  await page.getByRole('heading', { name: 'Audit log' }).waitFor();

  // The session ends (its cookies expire, or it is revoked elsewhere).
  await context.clearCookies();
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/\/login\?expired=1&next=%2Faudit/);
  await page.getByText('Your session ended. Log in again to continue.').waitFor();
  await page.getByLabel('Username').fill(ADMIN);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/audit$/);
  await page.getByRole('heading', { name: 'Audit log' }).waitFor();
  expect(problems).toEqual([]);
  await context.close();
});
