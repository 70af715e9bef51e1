// How a health check reads wherever it is listed (the checks pages and a server's checks
// section): its status badge, its target in one line, and its numbers in the user's language.
import { useTranslation } from 'react-i18next';
import type { Schemas } from '../../api/client';
import type { Check } from './CheckForm';

/** How often the list and a check's page refresh themselves. */
export const REFRESH_MS = 15_000;

/** What a check probes, in one line (`GET https://…`, `db:5432`, `MX example.com`). */
export function checkTarget(spec: Schemas['CheckSpec']): string {
  switch (spec.type) {
    case 'http':
      return `${spec.method ?? 'GET'} ${spec.url}`;
    case 'tcp':
      return spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
    case 'dns':
      return `${spec.record_type ?? 'A'} ${spec.name}${spec.resolver ? ` @${spec.resolver}` : ''}`;
  }
}

export function StatusBadge({ check }: { check: Pick<Check, 'last' | 'enabled'> }) {
  const { t } = useTranslation();
  const status = check.last?.status ?? 'pending';
  return (
    <span className={`status check-status-${status}`} data-testid="check-status">
      {t(`checks.status.${status}`)}
      {!check.enabled && <span className="muted"> · {t('checks.paused')}</span>}
    </span>
  );
}

export function formatPercent(value: number | null | undefined, locale: string): string {
  if (value === null || value === undefined) return '—';
  return new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: value >= 99.995 || value === 0 ? 0 : 2 }).format(value / 100);
}

export function formatMs(value: number | null | undefined, locale: string): string {
  if (value === null || value === undefined) return '—';
  return new Intl.NumberFormat(locale, { style: 'unit', unit: 'millisecond', unitDisplay: 'short' }).format(value);
}

/** `5 days`, `1 minute`, in the user's language. */
export function formatUnit(value: number, unit: 'second' | 'minute' | 'hour' | 'day', locale: string): string {
  return new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'long' }).format(value);
}
