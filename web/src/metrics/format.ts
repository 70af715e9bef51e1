// Number formatting for metrics: one place that turns a value and its unit into text, so cards,
// tables, chart axes and legends agree. Binary prefixes (KiB, MiB…) for bytes, as df and free do.
export type Unit = 'percent' | 'bytes' | 'bytes_per_s' | 'per_s' | 'seconds' | 'count' | 'load';

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function num(v: number, locale: string, digits: number): string {
  return new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(v);
}

/** 1536 → "1.5 KiB"; three significant digits at most. */
export function formatBytes(v: number, locale = 'en'): string {
  if (!Number.isFinite(v)) return '—';
  const sign = v < 0 ? '-' : '';
  let x = Math.abs(v);
  let i = 0;
  while (x >= 1024 && i < BYTE_UNITS.length - 1) {
    x /= 1024;
    i += 1;
  }
  const digits = i === 0 || x >= 100 ? 0 : x >= 10 ? 1 : 2;
  return `${sign}${num(x, locale, digits)} ${BYTE_UNITS[i]}`;
}

/** Seconds as the largest two units: 93784 → "1d 2h". */
export function formatDuration(secs: number): string {
  if (!Number.isFinite(secs) || secs < 0) return '—';
  const parts: [number, string][] = [
    [Math.floor(secs / 86400), 'd'],
    [Math.floor((secs % 86400) / 3600), 'h'],
    [Math.floor((secs % 3600) / 60), 'm'],
    [Math.floor(secs % 60), 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return '0s';
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join(' ');
}

/** A value in its unit, for people. `null`/`undefined`/NaN → "—". */
export function formatValue(v: number | null | undefined, unit: Unit, locale = 'en'): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  switch (unit) {
    case 'percent':
      return `${num(v, locale, v < 10 ? 1 : 0)} %`;
    case 'bytes':
      return formatBytes(v, locale);
    case 'bytes_per_s':
      return `${formatBytes(v, locale)}/s`;
    case 'per_s':
      return `${num(v, locale, v < 10 ? 2 : v < 100 ? 1 : 0)}/s`;
    case 'seconds':
      return formatDuration(v);
    case 'load':
      return num(v, locale, 2);
    case 'count':
      return num(v, locale, 0);
  }
}
