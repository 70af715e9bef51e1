// Small pure helpers behind the forms.
import { describe, expect, test } from 'vitest';
import { parseTags } from '../../src/features/servers/tags';

describe('tags typed by people', () => {
  test('commas or spaces, case folded, duplicates dropped', () => {
    expect(parseTags('web, Prod  db,,web')).toEqual(['web', 'prod', 'db']);
    expect(parseTags('  ')).toEqual([]);
  });
});
