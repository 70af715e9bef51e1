// The server inventory: search, tag filter, sorting and paging happen on the server, so the
// list stays fast with thousands of servers.
import { useCallback, useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useSearchParams } from 'react-router';
import { api, call, type Server } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, ErrorAlert, Loading, SelectField, TextField } from '../components/ui';
import { ServerFormDialog } from '../features/servers/ServerForm';

const PAGE_SIZES = [25, 50, 100];
type SortKey = 'name' | 'host' | 'created_at' | 'updated_at';

export function ServersPage() {
  const { t } = useTranslation();
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const tag = params.get('tag') ?? '';
  const sort = (params.get('sort') as SortKey) ?? 'name';
  const order = params.get('order') === 'desc' ? 'desc' : 'asc';
  const limit = Number(params.get('limit')) || 50;
  const offset = Number(params.get('offset')) || 0;
  const [search, setSearch] = useState(q);
  const [adding, setAdding] = useState(false);

  const update = useCallback(
    (changes: Record<string, string | number | null>) => {
      const next = new URLSearchParams(params);
      for (const [k, v] of Object.entries(changes)) {
        if (v === null || v === '') next.delete(k);
        else next.set(k, String(v));
      }
      if (!('offset' in changes)) next.delete('offset');
      setParams(next, { replace: true });
    },
    [params, setParams],
  );

  const {
    data: loaded,
    error,
    reload: load,
  } = useApi(async () => {
    const [page, tags] = await Promise.all([
      call(() =>
        api.GET('/api/v1/servers', {
          params: { query: { q: q || undefined, tag: tag || undefined, sort, order, limit, offset } },
        }),
      ),
      call(() => api.GET('/api/v1/tags')),
    ]);
    return { page, tags };
  }, [q, tag, sort, order, limit, offset]);
  const page = loaded?.page ?? null;
  const tags = loaded?.tags ?? [];

  // Search as the user types, after a short pause.
  useEffect(() => {
    if (search === q) return;
    const timer = setTimeout(() => update({ q: search }), 250);
    return () => clearTimeout(timer);
  }, [search, q, update]);

  const sortHeader = (key: SortKey, label: string) => {
    const active = sort === key;
    return (
      <th aria-sort={active ? (order === 'asc' ? 'ascending' : 'descending') : 'none'}>
        <button
          type="button"
          className="sort-btn"
          onClick={() => update({ sort: key, order: active && order === 'asc' ? 'desc' : 'asc' })}
        >
          {label}
          <span aria-hidden="true">{active ? (order === 'asc' ? ' ▲' : ' ▼') : ''}</span>
        </button>
      </th>
    );
  };

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.servers') }]} />
      <PageHeader
        title={t('nav.servers')}
        actions={
          can('servers.write') && (
            <Button variant="primary" onClick={() => setAdding(true)}>
              {t('servers.add')}
            </Button>
          )
        }
      />
      <div className="toolbar" role="search">
        <TextField
          label={t('common.search')}
          type="search"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          placeholder={t('servers.searchPlaceholder')}
        />
        <SelectField label={t('fields.tags')} value={tag} onChange={(e) => update({ tag: e.target.value })}>
          <option value="">{t('servers.allTags')}</option>
          {tags.map((tc) => (
            <option key={tc.tag} value={tc.tag}>
              {tc.tag} ({tc.count})
            </option>
          ))}
        </SelectField>
        <SelectField label={t('common.pageSize')} value={limit} onChange={(e) => update({ limit: e.target.value })}>
          {PAGE_SIZES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </SelectField>
      </div>
      <ErrorAlert error={error} />
      {!page ? (
        <Loading />
      ) : page.items.length === 0 ? (
        <p className="empty">{q || tag ? t('servers.noMatch') : t('servers.empty')}</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">{t('nav.servers')}</caption>
            <thead>
              <tr>
                {sortHeader('name', t('fields.name'))}
                {sortHeader('host', t('fields.host'))}
                <th>{t('fields.ssh_user')}</th>
                <th>{t('fields.tags')}</th>
                <th>{t('servers.credential')}</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((s: Server) => (
                <tr key={s.id}>
                  <td>
                    <Link to={`/servers/${s.id}`}>{s.name}</Link>
                  </td>
                  <td className="mono">
                    {s.host}:{s.port}
                    {s.endpoint_change && (
                      <span className="badge badge-warning" title={t('servers.endpoint.unconfirmedTitle')}>
                        {t('servers.endpoint.unconfirmedBadge')}
                      </span>
                    )}
                  </td>
                  <td>{s.ssh_user}</td>
                  <td>
                    {s.tags.map((tg) => (
                      <button key={tg} type="button" className="tag" onClick={() => update({ tag: tg })}>
                        {tg}
                      </button>
                    ))}
                  </td>
                  <td>{s.credential_kind ? t(`servers.kind.${s.credential_kind}`) : t('servers.noCredential')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {page && page.total > 0 && (
        <div className="pager">
          <span>{t('common.range', { from: offset + 1, to: Math.min(offset + limit, page.total), total: page.total })}</span>
          <Button disabled={offset === 0} onClick={() => update({ offset: Math.max(0, offset - limit) })}>
            {t('common.previous')}
          </Button>
          <Button disabled={offset + limit >= page.total} onClick={() => update({ offset: offset + limit })}>
            {t('common.next')}
          </Button>
        </div>
      )}
      {adding && (
        <ServerFormDialog
          open
          onClose={() => setAdding(false)}
          onSaved={() => {
            setAdding(false);
            void load();
          }}
        />
      )}
    </>
  );
}
