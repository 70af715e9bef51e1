// How runs read in a list (the run history and a server's recent runs) and on a run's page:
// the status label, durations, the hosts' counts, and the table rows with their headers.
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import type { Schemas } from '../../api/client';
import { formatTime } from '../../components/ui';

type Execution = Schemas['Execution'];

/** A run's or a host's status as a coloured label. */
export function RunStatus({ status }: { status: string }) {
  const { t } = useTranslation();
  return <span className={`status status-${status}`}>{t(`runs.status.${status}`, { defaultValue: status })}</span>;
}

/** Formats milliseconds as "850 ms", "4.2 s" or "3 min 5 s". */
export function useDuration(): (ms: number) => string {
  const { t } = useTranslation();
  return (ms: number) => {
    if (ms < 1000) return t('runs.ms', { n: Math.max(0, Math.round(ms)) });
    if (ms < 60_000) return t('runs.seconds', { n: (ms / 1000).toFixed(1) });
    const s = Math.round(ms / 1000);
    return t('runs.minutes', { m: Math.floor(s / 60), s: s % 60 });
  };
}

/** The first line of what ran, for one table cell. */
function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim()) ?? '';
  return line.length > 80 ? `${line.slice(0, 80)}…` : line;
}

/** A run's counts, compactly ("2 ok · 1 failed"). */
export function SummaryText({ summary }: { summary: Schemas['ExecutionSummary'] }) {
  const { t } = useTranslation();
  const parts = (['ok', 'failed', 'timed_out', 'error', 'cancelled', 'running'] as const)
    .filter((k) => summary[k] > 0)
    .map((k) => (
      <span key={k} className={`count count-${k}`}>
        {t(`runs.counts.${k}`, { count: summary[k] })}
      </span>
    ));
  return <span className="summary-text">{parts.length ? parts : t('runs.counts.none', { count: summary.total })}</span>;
}

/** Table rows for runs (shared with the server page's recent runs). */
export function RunRows({ items }: { items: Execution[] }) {
  const { t, i18n } = useTranslation();
  const duration = useDuration();
  return (
    <>
      {items.map((r) => (
        <tr key={r.id}>
          <td>
            <RunStatus status={r.status} />
          </td>
          <td>
            <Link to={`/runs/${r.id}`}>{r.script_name ? `${r.script_name} · ${t('scripts.versionN', { version: r.script_version })}` : t('runs.adHoc')}</Link>
            {!r.script_name && <div className="mono small muted">{firstLine(r.command)}</div>}
          </td>
          <td>{r.created_by}</td>
          <td className="nowrap">{formatTime(r.created_at, i18n.language)}</td>
          <td className="nowrap">{r.finished_at ? duration(new Date(r.finished_at).getTime() - new Date(r.created_at).getTime()) : '—'}</td>
          <td>
            <SummaryText summary={r.summary} />
          </td>
        </tr>
      ))}
    </>
  );
}

export function useRunHeaders() {
  const { t } = useTranslation();
  return [t('runs.statusLabel'), t('runs.what'), t('runs.who'), t('runs.when'), t('runs.duration'), t('runs.hosts')];
}
