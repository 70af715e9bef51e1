// Browser-test harness: a real `steward serve` (fresh data directory, random port) and a real
// Chromium driven by playwright-core. Screenshots go to test-results/screenshots.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
export const WEB_DIR = resolve(here, '../..');
export const SCREENSHOTS = join(WEB_DIR, 'test-results', 'screenshots');
const BIN = process.env.STEWARD_BIN ?? resolve(WEB_DIR, '../target/debug/steward');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const ADMIN = 'admin';
export const PASSWORD = 'violet-harbour-engine-42';

export interface Steward {
  url: string;
  dataDir: string;
  setupToken: string;
  stop: () => Promise<void>;
}

/** The environment without any Steward settings of the developer's shell. */
function stewardEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('STEWARD_') || k === 'RUST_LOG') delete env[k];
  return env;
}

/** Starts the real server (with extra `serve` options, if any) and waits until it listens. */
export async function startSteward(opts: { serveArgs?: string[] } = {}): Promise<Steward> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build it with \`cargo build -p steward\` first`);
  if (!existsSync(join(WEB_DIR, 'dist', 'index.html'))) throw new Error('web/dist is missing: run `npm run build` first');
  const dataDir = mkdtempSync(join(tmpdir(), 'steward-e2e-'));
  const child: ChildProcess = spawn(
    BIN,
    ['--data-dir', dataDir, '--log-format', 'json', 'serve', '--listen', '127.0.0.1:0', ...(opts.serveArgs ?? [])],
    { stdio: ['ignore', 'ignore', 'pipe'], env: stewardEnv() },
  );
  const lines = createInterface({ input: child.stderr! });
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('steward did not start within 30 s')), 30_000);
    child.once('exit', (code) => fail(new Error(`steward exited with ${code}`)));
    lines.on('line', (line) => {
      try {
        const v = JSON.parse(line) as { message?: string; address?: string };
        if (v.message === 'steward is listening' && v.address) {
          clearTimeout(timer);
          ok(`http://${v.address}`);
        }
      } catch {
        // not a log line
      }
    });
  });
  const setupToken = readFileSync(join(dataDir, 'setup-token'), 'utf8').trim();
  return {
    url,
    dataDir,
    setupToken,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let announced = false;

/** Launches Debian's Chromium headless. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install it with \`apt-get install -y chromium\``);
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  if (!announced) {
    announced = true;
    console.log(`screenshots: ${SCREENSHOTS}`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });
}

/** A browser context that fails the test on any CSP violation or uncaught page error. */
export async function newContext(browser: Browser, options: Parameters<Browser['newContext']>[0] = {}) {
  const context: BrowserContext = await browser.newContext({ locale: 'en-US', ...options });
  const problems: string[] = [];
  context.on('page', (page) => watch(page, problems));
  return { context, problems };
}

function watch(page: Page, problems: string[]) {
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Completes first-run setup through the UI and ends up signed in on the dashboard. */
export async function setupThroughUi(page: Page, s: Steward): Promise<void> {
  await page.goto(`${s.url}/setup?token=${encodeURIComponent(s.setupToken)}`);
  await page.getByLabel('Username').fill(ADMIN);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Repeat password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
}

export async function login(page: Page, s: Steward, username: string, password: string): Promise<void> {
  await page.goto(`${s.url}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Calls the API with the page's session cookie (for test set-up, not for what is tested). */
export async function apiCall(page: Page, method: string, path: string, body?: unknown): Promise<unknown> {
  return page.evaluate(
    async ([m, p, b]) => {
      const r = await fetch(p as string, {
        method: m as string,
        headers: b ? { 'Content-Type': 'application/json' } : {},
        body: b ? JSON.stringify(b) : undefined,
      });
      const text = await r.text();
      if (!r.ok) throw new Error(`${m} ${p}: ${r.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    [method, path, body] as const,
  );
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) for a base32 secret, `offset` steps from now. */
export function totp(secretBase32: string, offset = 0): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secretBase32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000) + offset));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1]! & 0xf;
  const n = ((h[o]! & 0x7f) << 24) | (h[o + 1]! << 16) | (h[o + 2]! << 8) | h[o + 3]!;
  return String(n % 1_000_000).padStart(6, '0');
}

/** Completes first-run setup through the API, for test files whose concern is elsewhere. */
export async function setupViaApi(s: Steward): Promise<void> {
  const r = await fetch(`${s.url}/api/v1/setup`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: s.setupToken, username: ADMIN, password: PASSWORD }),
  });
  if (!r.ok) throw new Error(`setup: ${r.status} ${await r.text()}`);
}

/** Logs in through the login page and waits until the dashboard shows. */
export async function loginToDashboard(page: Page, s: Steward, username = ADMIN, password = PASSWORD): Promise<void> {
  await login(page, s, username, password);
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
}

/** Logs out through the user menu and waits for the login page. */
export async function logout(page: Page, username = ADMIN): Promise<void> {
  await page.getByRole('button', { name: username }).click();
  await page.getByRole('menuitem', { name: 'Log out' }).click();
  await page.waitForURL(/\/login/);
}

/** The texts of the main navigation's links, in order. */
export async function navLinks(page: Page): Promise<string[]> {
  const texts = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
  return texts.map((t) => t.trim());
}

/** `expect.poll` with a timeout that suits a busy 2-core machine running two browsers. */
export function poll<T>(fn: () => T | Promise<T>, timeout = 15_000) {
  return expect.poll(fn, { timeout, interval: 100 });
}

/** The names in the server list, top to bottom. */
export async function serverNames(page: Page): Promise<string[]> {
  const cells = page.getByRole('table', { name: 'Servers' }).locator('tbody tr td:first-child');
  return (await cells.allTextContents()).map((t) => t.trim());
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Violation {
  id: string;
  impact: string;
  help: string;
  nodes: { target: string[] }[];
}

/** The WCAG 2.1 A and AA violations axe-core finds on the page, one line each. The page's CSP
 * forbids injected scripts: open the page in a context made with `bypassCSP: true`. */
export async function a11yViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: axeSource });
  const violations = (await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (o: unknown) => Promise<{ violations: unknown[] }> } }).axe;
    const r = await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations;
  })) as Violation[];
  return violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}
