// Languages: switching in the user menu changes the UI, the choice is kept on the account, and
// before login the browser's language decides. Expected texts come from the locale files as
// they are when the test runs (translations are in progress), never from this file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN, PASSWORD, WEB_DIR, launchBrowser, login, newContext, poll, setupViaApi, shot, startSteward, type Steward } from './harness';

type Strings = { [key: string]: string | Strings };

function readLocale(code: string): Strings {
  return JSON.parse(readFileSync(join(WEB_DIR, 'src', 'locales', `${code}.json`), 'utf8')) as Strings;
}

function lookup(strings: Strings, key: string): string | undefined {
  let v: string | Strings | undefined = strings;
  for (const part of key.split('.')) v = typeof v === 'object' ? v[part] : undefined;
  return typeof v === 'string' ? v : undefined;
}

const en = readLocale('en');
const de = readLocale('de');
const fr = readLocale('fr');

/** What the UI shows for a key in a language: its own string, or English where it has none. */
function text(strings: Strings, key: string): string {
  const v = lookup(strings, key) ?? lookup(en, key);
  if (v === undefined) throw new Error(`no string for ${key}`);
  return v;
}

const STALE = 'the UI does not show the locale file’s text: if a locale file changed, rebuild web/dist (npx vite build)';
const NAV_KEYS = ['nav.dashboard', 'nav.servers', 'nav.checks', 'nav.scripts', 'nav.runs', 'nav.users', 'nav.roles', 'nav.recordings', 'nav.audit', 'nav.settings'];

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

async function navTexts(page: Page, strings: Strings): Promise<string[]> {
  const nav = page.getByRole('navigation', { name: text(strings, 'nav.main'), exact: true });
  return (await nav.getByRole('link').allTextContents()).map((t) => t.trim());
}

/** Checks the frame and dashboard of a signed-in admin are in German. */
async function expectGermanDashboard(page: Page) {
  await page.getByRole('heading', { name: text(de, 'dashboard.title'), exact: true, level: 1 }).waitFor();
  await expect(page.evaluate(() => document.documentElement.lang)).resolves.toBe('de');
  const nav = await navTexts(page, de);
  expect(nav, STALE).toEqual(NAV_KEYS.map((k) => text(de, k)));
  // Whatever is translated already is no longer English.
  for (const key of NAV_KEYS) {
    if (text(de, key) !== text(en, key)) expect(nav).not.toContain(text(en, key));
  }
  await expect(page.getByRole('link', { name: text(de, 'dashboard.viewServers'), exact: true }).isVisible()).resolves.toBe(true);
}

test('German from the user menu, kept on the account across browsers', async () => {
  const same = [...NAV_KEYS, 'dashboard.title', 'login.title', 'servers.add'].filter((k) => text(de, k) === text(en, k));
  if (same.length) console.log(`de.json has the English text for ${same.join(', ')}; those are checked as they are`);
  // Without any German in the navigation the switch could not be seen at all.
  expect(NAV_KEYS.some((k) => text(de, k) !== text(en, k)), 'de.json translates none of the navigation').toBe(true);

  const { context, problems } = await newContext(browser);
  const page = await context.newPage();
  await login(page, steward, ADMIN, PASSWORD);
  await page.getByRole('heading', { name: text(en, 'dashboard.title'), exact: true, level: 1 }).waitFor();
  expect(await navTexts(page, en)).toEqual(NAV_KEYS.map((k) => text(en, k)));
  await expect(page.evaluate(() => document.documentElement.lang)).resolves.toBe('en');

  // Switch in the user menu; it closes once the choice is saved.
  await page.getByRole('button', { name: ADMIN }).click();
  const menu = page.getByRole('menu');
  const language = menu.getByLabel(text(en, 'profile.language'));
  await expect(language.inputValue()).resolves.toBe('en');
  await expect(language.locator('option').allTextContents()).resolves.toContain('Deutsch');
  await language.selectOption({ label: 'Deutsch' });
  await menu.waitFor({ state: 'hidden' });
  await expectGermanDashboard(page);
  await shot(page, '32-dashboard-de');

  // The menu itself, and another page.
  await page.getByRole('button', { name: ADMIN }).click();
  const items = (await menu.getByRole('menuitem').allTextContents()).map((t) => t.trim());
  expect(items, STALE).toEqual(expect.arrayContaining([text(de, 'nav.profile'), text(de, 'nav.security'), text(de, 'nav.tokens'), text(de, 'nav.logout')]));
  await expect(menu.getByLabel(text(de, 'profile.language')).inputValue()).resolves.toBe('de');
  await page.getByRole('button', { name: ADMIN }).click();
  await menu.waitFor({ state: 'hidden' });
  await page.getByRole('navigation', { name: text(de, 'nav.main'), exact: true }).getByRole('link', { name: text(de, 'nav.servers'), exact: true }).click();
  await page.getByRole('heading', { name: text(de, 'nav.servers'), exact: true, level: 1 }).waitFor();
  await expect(page.getByRole('button', { name: text(de, 'servers.add'), exact: true }).isVisible()).resolves.toBe(true);
  await page.getByText(text(de, 'servers.empty')).waitFor();
  await shot(page, '33-servers-de');

  // The profile page shows the saved choice.
  await page.goto(`${steward.url}/profile`);
  await page.getByRole('heading', { name: text(de, 'nav.profile'), exact: true, level: 1 }).waitFor();
  await expect(page.getByLabel(text(de, 'profile.language')).inputValue()).resolves.toBe('de');

  // Log out: this browser remembers German for its login page too.
  await page.getByRole('button', { name: ADMIN }).click();
  await menu.getByRole('menuitem', { name: text(de, 'nav.logout'), exact: true }).click();
  await page.waitForURL(/\/login/);
  await page.getByRole('heading', { name: text(de, 'login.title'), exact: true, level: 1 }).waitFor();
  expect(problems).toEqual([]);
  await context.close();

  // A fresh browser that prefers English: English until login, then the account's German.
  const fresh = await newContext(browser, { locale: 'en-US' });
  const page2 = await fresh.context.newPage();
  await page2.goto(`${steward.url}/login`);
  await page2.getByRole('heading', { name: text(en, 'login.title'), exact: true, level: 1 }).waitFor();
  await expect(page2.evaluate(() => document.documentElement.lang)).resolves.toBe('en');
  await login(page2, steward, ADMIN, PASSWORD);
  await expectGermanDashboard(page2);
  await shot(page2, '34-dashboard-de-fresh-browser');

  // Back to English from the menu, for good measure.
  await page2.getByRole('button', { name: ADMIN }).click();
  await page2.getByRole('menu').getByLabel(text(de, 'profile.language')).selectOption('en');
  await page2.getByRole('menu').waitFor({ state: 'hidden' });
  await page2.getByRole('heading', { name: text(en, 'dashboard.title'), exact: true, level: 1 }).waitFor();
  expect(await navTexts(page2, en)).toEqual(NAV_KEYS.map((k) => text(en, k)));

  expect(fresh.problems).toEqual([]);
  await fresh.context.close();
});

test('a French browser gets the French login page', async () => {
  const { context, problems } = await newContext(browser, { locale: 'fr-FR' });
  const page = await context.newPage();
  await page.goto(`${steward.url}/login`);
  await page.getByRole('heading', { name: text(fr, 'login.title'), exact: true, level: 1 }).waitFor();
  await expect(page.evaluate(() => document.documentElement.lang)).resolves.toBe('fr');
  await expect(page.getByLabel(text(fr, 'fields.username'), { exact: true }).isVisible(), STALE).resolves.toBe(true);
  await expect(page.getByLabel(text(fr, 'fields.password'), { exact: true }).isVisible(), STALE).resolves.toBe(true);
  await expect(page.getByRole('button', { name: text(fr, 'login.submit'), exact: true }).isVisible(), STALE).resolves.toBe(true);
  if (text(fr, 'login.title') !== text(en, 'login.title')) {
    await expect(page.getByText(text(en, 'login.title')).count()).resolves.toBe(0);
  }
  await shot(page, '35-login-fr');

  // A wrong password: the error is in French as well.
  await page.getByLabel(text(fr, 'fields.username'), { exact: true }).fill(ADMIN);
  await page.getByLabel(text(fr, 'fields.password'), { exact: true }).fill('not-the-password-1');
  await page.getByRole('button', { name: text(fr, 'login.submit'), exact: true }).click();
  await poll(() => page.getByRole('alert').textContent()).toBe(text(fr, 'errors.invalid_credentials'));

  expect(problems).toEqual([]);
  await context.close();
});
