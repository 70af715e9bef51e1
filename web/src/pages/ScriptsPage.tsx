// The script library: search, and the way into the editor. Running starts from a script.
// Each script shows who owns it: the whole organization, or tags (where it may run).
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { api, call } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { DataTable, ErrorAlert, Loading, TextField, formatTime } from '../components/ui';
import { useDebounced } from '../components/useDebounced';

export function ScriptsPage() {
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const [search, setSearch] = useState('');
  // Searched as the user types, after a short pause.
  const q = useDebounced(search.trim(), 200);
  const { data: items, error } = useApi(() => call(() => api.GET('/api/v1/scripts', { params: { query: { q: q || undefined } } })), [q]);

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.scripts') }]} />
      <PageHeader
        title={t('nav.scripts')}
        actions={
          can('scripts.write') && (
            <Link className="btn btn-primary" to="/scripts/new">
              {t('scripts.new')}
            </Link>
          )
        }
      />
      <div className="toolbar">
        <TextField label={t('common.search')} type="search" value={search} placeholder={t('scripts.searchPlaceholder')} onChange={(e) => setSearch(e.target.value)} />
      </div>
      <ErrorAlert error={error} />
      {!items ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="empty">{search ? t('scripts.noMatch') : t('scripts.empty')}</p>
      ) : (
        <DataTable caption={t('nav.scripts')} headers={[t('fields.name'), t('fields.description'), t('scripts.owner.column'), t('scripts.shell'), t('scripts.version'), t('fields.updated')]}>
          {items.map((s) => (
            <tr key={s.id}>
              <td>
                <Link to={`/scripts/${s.id}`}>{s.name}</Link>
              </td>
              <td className="muted">{s.description.split('\n')[0]}</td>
              <td className="owner-cell">
                {s.owner_tags == null ? (
                  <span className="muted">{t('scripts.owner.orgShort')}</span>
                ) : (
                  s.owner_tags.map((tag) => (
                    <span key={tag} className="tag">
                      {tag}
                    </span>
                  ))
                )}
              </td>
              <td className="mono">{s.shell}</td>
              <td>{s.version}</td>
              <td className="nowrap">
                {formatTime(s.updated_at, i18n.language)}
                {s.updated_by && <span className="muted small"> · {s.updated_by}</span>}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </>
  );
}
