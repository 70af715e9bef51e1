// Reading asciicast v2 recordings: a header line, then [seconds, kind, data] events.
export interface Cast {
  width: number;
  height: number;
  /** Output ("o") and resize ("r") events, in time order. */
  events: { at: number; kind: string; data: string }[];
  duration: number;
}

export function parseCast(text: string): Cast {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = JSON.parse(lines[0] ?? '{}') as { version?: number; width?: number; height?: number };
  if (header.version !== 2) throw new Error('not an asciicast v2 recording');
  const events: Cast['events'] = [];
  for (const line of lines.slice(1)) {
    const e = JSON.parse(line) as [number, string, string];
    events.push({ at: e[0], kind: e[1], data: e[2] });
  }
  return {
    width: header.width ?? 80,
    height: header.height ?? 24,
    events,
    duration: events.length ? events[events.length - 1]!.at : 0,
  };
}

/** "100x30" → [100, 30]. */
export function parseSize(data: string): [number, number] | null {
  const m = /^(\d+)x(\d+)$/.exec(data);
  return m ? [Number(m[1]), Number(m[2])] : null;
}
