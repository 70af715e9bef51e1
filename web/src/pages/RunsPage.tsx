// The run history: who ran what where, how it went; filters and cursor paging like the audit
// log. Each row opens the run's page. Ad-hoc commands start here too.
import { useCallback, useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { api, call, type Schemas } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, Checkbox, DataTable, ErrorAlert, Loading, SelectField, formatTime, useAction } from '../components/ui';
import { RunDialog } from './RunDialog';

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

interface Filters {
  status: string;
  script_id: string;
  server_id: string;
  mine: boolean;
}

const EMPTY: Filters = { status: '', script_id: '', server_id: '', mine: false };

export function RunsPage() {
  const { t } = useTranslation();
  const { can } = useAuth();
  const { busy, error, run } = useAction();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [items, setItems] = useState<Execution[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [scripts, setScripts] = useState<Schemas['Script'][]>([]);
  const [servers, setServers] = useState<Schemas['Server'][]>([]);
  const [adHoc, setAdHoc] = useState(false);
  const headers = useRunHeaders();

  useEffect(() => {
    if (can('scripts.run') || can('scripts.write')) void call(() => api.GET('/api/v1/scripts')).then(setScripts, () => undefined);
    if (can('servers.read')) void call(() => api.GET('/api/v1/servers', { params: { query: { limit: 500 } } })).then((p) => setServers(p.items), () => undefined);
  }, [can]);

  const load = useCallback(
    async (after?: string) => {
      await run(async () => {
        const query = {
          status: filters.status || undefined,
          script_id: filters.script_id || undefined,
          server_id: filters.server_id || undefined,
          mine: filters.mine || undefined,
          limit: 50,
          cursor: after,
        };
        const page = await call(() => api.GET('/api/v1/executions', { params: { query } }));
        setItems((prev) => (after && prev ? [...prev, ...page.items] : page.items));
        setCursor(page.next_cursor ?? null);
      });
    },
    [filters, run],
  );
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.runs') }]} />
      <PageHeader
        title={t('nav.runs')}
        actions={
          can('scripts.run') && (
            <Button variant="primary" onClick={() => setAdHoc(true)}>
              {t('runs.adHocButton')}
            </Button>
          )
        }
      />
      <form
        className="toolbar filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters({ ...draft });
        }}
      >
        <SelectField label={t('runs.statusLabel')} value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.target.value })}>
          <option value="">{t('runs.anyStatus')}</option>
          {['running', 'finished', 'cancelled', 'interrupted'].map((s) => (
            <option key={s} value={s}>
              {t(`runs.status.${s}`)}
            </option>
          ))}
        </SelectField>
        <SelectField label={t('runs.script')} value={draft.script_id} onChange={(e) => setDraft({ ...draft, script_id: e.target.value })}>
          <option value="">{t('runs.anyScript')}</option>
          {scripts.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name}
            </option>
          ))}
        </SelectField>
        <SelectField label={t('runs.server')} value={draft.server_id} onChange={(e) => setDraft({ ...draft, server_id: e.target.value })}>
          <option value="">{t('runs.anyServer')}</option>
          {servers.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name}
            </option>
          ))}
        </SelectField>
        {can('audit.read') && <Checkbox label={t('runs.mine')} checked={draft.mine} onChange={(e) => setDraft({ ...draft, mine: e.target.checked })} />}
        <div className="toolbar-actions">
          <Button type="submit" variant="primary">
            {t('audit.apply')}
          </Button>
          <Button
            onClick={() => {
              setDraft(EMPTY);
              setFilters(EMPTY);
            }}
          >
            {t('audit.clear')}
          </Button>
        </div>
      </form>
      <ErrorAlert error={error} />
      {!items ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="empty">{t('runs.empty')}</p>
      ) : (
        <DataTable caption={t('nav.runs')} headers={headers}>
          <RunRows items={items} />
        </DataTable>
      )}
      {cursor && (
        <div className="pager">
          <Button busy={busy} onClick={() => void load(cursor)}>
            {t('runs.more')}
          </Button>
        </div>
      )}
      {adHoc && <RunDialog open adHoc onClose={() => setAdHoc(false)} />}
    </>
  );
}
