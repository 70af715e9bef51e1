// Who may change a script, as the server decides it: a script's owner is the whole
// organization (`null`) or tags; changing it needs `scripts.write` on every server it may run
// on (the whole organization, or a scope whose tags include every owner tag). `me.scopes` says
// where each server-scoped permission applies: `null` everywhere, else a list of tags.
import type { PermissionScope } from '../../auth/AuthContext';

export { scopeOf, type PermissionScope } from '../../auth/AuthContext';

/** Whether a scope covers every server a script owned by `owner` may run on. */
export function coversOwner(scope: PermissionScope, owner: string[] | null | undefined): boolean {
  if (scope === undefined) return false;
  if (scope === null) return true;
  if (owner == null) return false;
  return owner.length > 0 && owner.every((t) => scope.includes(t));
}

/** Tags a scoped writer may not give a script: those outside their scope. */
export function tagsOutside(scope: PermissionScope, tags: string[]): string[] {
  if (scope === null) return [];
  if (scope === undefined) return tags;
  return tags.filter((t) => !scope.includes(t));
}

export type DiffLineKind = 'file' | 'hunk' | 'add' | 'del' | 'same' | 'note';

/** One line of a unified diff, with what it is (for colouring). */
export interface DiffLine {
  kind: DiffLineKind;
  text: string;
}

/** Splits a unified diff (as `script_changed` carries it) into kinds of lines. */
export function diffLines(diff: string): DiffLine[] {
  const lines = diff.replace(/\n$/, '').split('\n');
  return lines.map((text) => {
    if (text.startsWith('+++') || text.startsWith('---')) return { kind: 'file', text };
    if (text.startsWith('@@')) return { kind: 'hunk', text };
    if (text.startsWith('+')) return { kind: 'add', text };
    if (text.startsWith('-')) return { kind: 'del', text };
    if (text.startsWith('\\')) return { kind: 'note', text };
    return { kind: 'same', text };
  });
}
