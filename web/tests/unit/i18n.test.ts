// Translation guards: every language has every key (with the same placeholders), every key the
// code uses exists, and no user-visible text in the UI source bypasses the translations.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { LANGUAGES, pickLanguage } from '../../src/i18n';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
type Tree = { [k: string]: string | Tree };

function flatten(tree: Tree, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') out.set(key, v);
    else for (const [kk, vv] of flatten(v, key)) out.set(kk, vv);
  }
  return out;
}

const load = (code: string) => flatten(JSON.parse(readFileSync(join(SRC, 'locales', `${code}.json`), 'utf8')) as Tree);
const placeholders = (s: string) => [...s.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]).sort();
const english = load('en');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

function rustFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return rustFiles(path);
    return name.endsWith('.rs') ? [path] : [];
  });
}

describe('every language', () => {
  for (const { code } of LANGUAGES) {
    test(`${code} has every key, with the same placeholders`, () => {
      const other = load(code);
      const missing = [...english.keys()].filter((k) => !other.has(k));
      const extra = [...other.keys()].filter((k) => !english.has(k));
      expect({ missing, extra }).toEqual({ missing: [], extra: [] });
      const wrong = [...english].filter(([k, v]) => placeholders(v).join() !== placeholders(other.get(k) ?? '').join());
      expect(wrong.map(([k]) => k)).toEqual([]);
      const empty = [...other].filter(([, v]) => !v.trim()).map(([k]) => k);
      expect(empty).toEqual([]);
    });
  }
});

// Props of our components and DOM attributes that people read.
const TEXT_ATTRIBUTES = new Set(['aria-label', 'title', 'alt', 'placeholder', 'label', 'hint', 'message', 'confirmLabel', 'legend']);
// Text that is the same in every language.
const ALLOWED = new Set(['Steward', '☰', '×', '—', '…', '▲', '▼']);
const hasWords = (s: string) => /\p{L}{2,}/u.test(s) && !ALLOWED.has(s.trim());

describe('the UI source', () => {
  const files = sourceFiles(SRC);

  test('shows no text that is not translated', () => {
    const found: string[] = [];
    for (const file of files.filter((f) => f.endsWith('.tsx'))) {
      const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX);
      const where = (n: ts.Node) => `${relative(SRC, file)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
      const visit = (n: ts.Node) => {
        if (ts.isJsxText(n) && hasWords(n.getText())) found.push(`${where(n)} text "${n.getText().trim()}"`);
        if (ts.isJsxAttribute(n) && TEXT_ATTRIBUTES.has(n.name.getText())) {
          const init = n.initializer;
          const literal = init && ts.isStringLiteral(init) ? init.text : init && ts.isJsxExpression(init) && init.expression && ts.isStringLiteralLike(init.expression) ? init.expression.text : null;
          if (literal !== null && hasWords(literal)) found.push(`${where(n)} ${n.name.getText()}="${literal}"`);
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(found).toEqual([]);
  });

  test('uses only keys that exist', () => {
    const unknown: string[] = [];
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\bt\(\s*'([a-zA-Z0-9_.-]+)'/g)) {
        if (!english.has(m[1]!)) unknown.push(`${relative(SRC, file)}: ${m[1]}`);
      }
      // Dynamic keys (`servers.kind.${kind}`) must name a known group.
      for (const m of text.matchAll(/\bt\(\s*`([a-zA-Z0-9_.-]+)\.\$\{/g)) {
        if (![...english.keys()].some((k) => k.startsWith(`${m[1]}.`))) unknown.push(`${relative(SRC, file)}: ${m[1]}.*`);
      }
    }
    expect(unknown).toEqual([]);
  });

  test('every error code the server sends has a translation', () => {
    // The HTTP layer's own codes, and those of the domain services it passes on.
    const crates = ['steward-api', 'steward-services'].map((c) => resolve(SRC, `../../crates/${c}/src`));
    const codes = new Set<string>();
    for (const file of crates.flatMap((dir) => rustFiles(dir))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:unauthorized|conflict|bad_request|with_code|ServiceError::invalid|ServiceError::unreachable)\(\s*"([a-z_]+)"/g)) codes.add(m[1]!);
      for (const m of text.matchAll(/StatusCode::[A-Z_]+,\s*"([a-z_]+)"/g)) codes.add(m[1]!);
      // `ServiceError::Busy { code: "busy", … }` and the like.
      for (const m of text.matchAll(/ServiceError::[A-Za-z]+\s*\{\s*code:\s*"([a-z_]+)"/g)) codes.add(m[1]!);
    }
    expect(codes.size).toBeGreaterThan(15);
    const missing = [...codes].filter((c) => !english.has(`errors.${c}`));
    expect(missing).toEqual([]);
  });
});

describe('language choice', () => {
  test('follows the browser, falling back sensibly', () => {
    expect(pickLanguage(['de-AT', 'en'])).toBe('de');
    expect(pickLanguage(['pt-PT'])).toBe('pt-BR');
    expect(pickLanguage(['zh-TW'])).toBe('zh-CN');
    expect(pickLanguage(['ja-JP'])).toBe('ja');
    expect(pickLanguage(['ko', 'fr-CA'])).toBe('fr');
    expect(pickLanguage(['ko'])).toBe('en');
    expect(pickLanguage([])).toBe('en');
  });
});
