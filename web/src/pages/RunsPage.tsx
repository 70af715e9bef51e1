// The run history: who ran what where, how it went; filters and cursor paging like the audit
// log. Each row opens the run's page. Ad-hoc commands start here too.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, Checkbox, DataTable, ErrorAlert, Loading, SelectField, useAction } from '../components/ui';
import { RunDialog } from '../features/runs/RunDialog';
import { RunRows, useRunHeaders } from '../features/runs/RunRows';

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
  const more = useAction();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [adHoc, setAdHoc] = useState(false);
  const headers = useRunHeaders();

  // The filters' choices.
  const listsScripts = can('scripts.run') || can('scripts.write');
  const listsServers = can('servers.read');
  const { data: scripts = [] } = useApi(listsScripts && (() => call(() => api.GET('/api/v1/scripts'))), [listsScripts]);
  const { data: servers = [] } = useApi(
    listsServers && (() => call(() => api.GET('/api/v1/servers', { params: { query: { limit: 500 } } })).then((p) => p.items)),
    [listsServers],
  );

  /** The runs matching the filters, 50 at a time from `after` on. */
  const fetchPage = async (after?: string) => {
    const query = {
      status: filters.status || undefined,
      script_id: filters.script_id || undefined,
      server_id: filters.server_id || undefined,
      mine: filters.mine || undefined,
      limit: 50,
      cursor: after,
    };
    const page = await call(() => api.GET('/api/v1/executions', { params: { query } }));
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
      <ErrorAlert error={more.error ?? list.error} />
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
          <Button busy={more.busy || list.loading} onClick={() => void loadMore(cursor)}>
            {t('runs.more')}
          </Button>
        </div>
      )}
      {adHoc && <RunDialog open adHoc onClose={() => setAdHoc(false)} />}
    </>
  );
}
