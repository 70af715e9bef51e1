// Server tags as people type them and as the server stores them (servers, role scopes and
// script owners all use the same tags).

/** Tags as the server stores them: trimmed, lower-case, without repeats, in order. */
export function normalizeTags(tags: string[]): string[] {
  const out: string[] = [];
  for (const t of tags) {
    const v = t.trim().toLowerCase();
    if (v && !out.includes(v)) out.push(v);
  }
  return out;
}

/** Parses "web, db prod" into tags. */
export function parseTags(input: string): string[] {
  return normalizeTags(input.split(/[\s,]+/));
}
