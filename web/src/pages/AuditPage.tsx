// The audit log: filters, cursor paging, and CSV/JSON export of everything that matches.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call } from '../api/client';
import { useApi } from '../api/useApi';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, DataTable, ErrorAlert, Loading, SelectField, TextField, formatTime, useAction } from '../components/ui';

interface Filters {
  actor: string;
  action: string;
  target: string;
  outcome: string;
  from: string;
  to: string;
}

const EMPTY: Filters = { actor: '', action: '', target: '', outcome: '', from: '', to: '' };

function toQuery(f: Filters): Record<string, string> {
  const q: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) {
    if (!v) continue;
    // datetime-local values are local times; the API wants RFC 3339.
    q[k] = k === 'from' || k === 'to' ? new Date(v).toISOString() : v;
  }
  return q;
}

export function AuditPage() {
  const { t, i18n } = useTranslation();
  const more = useAction();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);

  /** The events matching the filters, 50 at a time from `after` on. */
  const fetchPage = async (after?: string) => {
    const page = await call(() => api.GET('/api/v1/audit', { params: { query: { ...toQuery(filters), limit: 50, cursor: after } } }));
    return { items: page.items, cursor: page.next_cursor ?? null };
  };
  // A list for new filters also clears what a failed "More" said about the old one.
  const list = useApi(() => fetchPage(), [filters], { onData: () => more.setError(null) });
  const items = list.data?.items ?? null;
  const cursor = list.data?.cursor ?? null;
  const loadMore = (after: string) =>
    more.run(async () => {
      const base = list.data;
      const next = await fetchPage(after);
      // Appended only to the list it continues, not to one loaded for other filters since.
      list.setData((d) => (d && d === base ? { items: [...d.items, ...next.items], cursor: next.cursor } : d));
    });

  const exportUrl = (format: 'csv' | 'json') => `/api/v1/audit?${new URLSearchParams({ ...toQuery(filters), format })}`;
  const set = (k: keyof Filters) => (e: { target: { value: string } }) => setDraft({ ...draft, [k]: e.target.value });

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.audit') }]} />
      <PageHeader
        title={t('nav.audit')}
        actions={
          <>
            <a className="btn btn-secondary" href={exportUrl('csv')} download>
              {t('audit.exportCsv')}
            </a>
            <a className="btn btn-secondary" href={exportUrl('json')} download>
              {t('audit.exportJson')}
            </a>
          </>
        }
      />
      <form
        className="toolbar filters"
        onSubmit={(e) => {
          e.preventDefault();
          // A new object even when nothing changed: Apply also means "refresh".
          setFilters({ ...draft });
        }}
      >
        <TextField label={t('audit.actor')} value={draft.actor} onChange={set('actor')} />
        <TextField label={t('audit.action')} value={draft.action} onChange={set('action')} hint={t('audit.actionHint')} />
        <TextField label={t('audit.target')} value={draft.target} onChange={set('target')} />
        <SelectField label={t('audit.outcome')} value={draft.outcome} onChange={set('outcome')}>
          <option value="">{t('audit.anyOutcome')}</option>
          <option value="success">{t('audit.outcomes.success')}</option>
          <option value="failure">{t('audit.outcomes.failure')}</option>
          <option value="denied">{t('audit.outcomes.denied')}</option>
        </SelectField>
        <TextField label={t('audit.from')} type="datetime-local" value={draft.from} onChange={set('from')} />
        <TextField label={t('audit.to')} type="datetime-local" value={draft.to} onChange={set('to')} />
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
      <ErrorAlert error={more.error ?? list.error} />
      {!items ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="empty">{t('audit.empty')}</p>
      ) : (
        <DataTable caption={t('nav.audit')} headers={[t('audit.time'), t('audit.actor'), t('audit.action'), t('audit.target'), t('audit.outcome'), t('audit.source')]}>
              {items.map((ev) => (
                <tr key={ev.id}>
                  <td className="nowrap">{formatTime(ev.at, i18n.language)}</td>
                  <td>{ev.actor_name ?? '—'}</td>
                  <td className="mono">{ev.action}</td>
                  <td>{ev.target_name ?? '—'}</td>
                  <td>
                    <span className={`outcome outcome-${ev.outcome}`}>{t(`audit.outcomes.${ev.outcome}`, { defaultValue: ev.outcome })}</span>
                  </td>
                  <td className="mono">{ev.source_ip ?? '—'}</td>
                </tr>
              ))}
        </DataTable>
      )}
      {cursor && (
        <div className="pager">
          <Button busy={more.busy || list.loading} onClick={() => void loadMore(cursor)}>
            {t('audit.more')}
          </Button>
        </div>
      )}
    </>
  );
}
