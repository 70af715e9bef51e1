// The run history: who ran what where, how it went; filters and cursor paging like the audit
// log. Each row opens the run's page. Ad-hoc commands start here too.
import { useCallback, useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call, type Schemas } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, Checkbox, DataTable, ErrorAlert, Loading, SelectField, useAction } from '../components/ui';
import { RunDialog } from '../features/runs/RunDialog';
import { RunRows, useRunHeaders } from '../features/runs/RunRows';

type Execution = Schemas['Execution'];

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
