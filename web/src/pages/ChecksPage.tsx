// Health checks: every check the user can see with its status, last response time and
// uptime, filtered by name and status; creating one.
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate } from 'react-router';
import { api, call } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, DataTable, ErrorAlert, Loading, SelectField, TextField, formatTime } from '../components/ui';
import { useDebounced } from '../components/useDebounced';
import { CheckFormDialog } from '../features/checks/CheckForm';
import { REFRESH_MS, StatusBadge, checkTarget, formatMs, formatPercent } from '../features/checks/checkDisplay';
import '../styles/checks.css';

const STATUSES = ['up', 'degraded', 'down', 'pending'] as const;

export function ChecksPage() {
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const navigate = useNavigate();
  const [search, setSearch] = useState('');
  const [status, setStatus] = useState('');
  const [creating, setCreating] = useState(false);
  const lang = i18n.language;
  // Searched as the user types, after a short pause.
  const q = useDebounced(search.trim(), 200);
  const {
    data: items,
    error,
    reload,
  } = useApi(() => call(() => api.GET('/api/v1/checks', { params: { query: { q: q || undefined, status: status || undefined } } })), [q, status]);

  useEffect(() => {
    const every = setInterval(() => void reload(), REFRESH_MS);
    return () => clearInterval(every);
  }, [reload]);

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.checks') }]} />
      <PageHeader
        title={t('nav.checks')}
        actions={
          can('checks.write') && (
            <Button variant="primary" onClick={() => setCreating(true)}>
              {t('checks.create')}
            </Button>
          )
        }
      />
      <div className="toolbar">
        <TextField label={t('common.search')} type="search" value={search} placeholder={t('checks.searchPlaceholder')} onChange={(e) => setSearch(e.target.value)} />
        <SelectField label={t('checks.statusFilter')} value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">{t('checks.anyStatus')}</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {t(`checks.status.${s}`)}
            </option>
          ))}
        </SelectField>
      </div>
      <ErrorAlert error={error} />
      {!items ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="empty">{search || status ? t('checks.noMatch') : t('checks.empty')}</p>
      ) : (
        <DataTable
          caption={t('nav.checks')}
          headers={[t('fields.name'), t('checks.target'), t('checks.statusFilter'), t('checks.responseTime'), t('checks.uptime24h'), t('checks.uptime7d'), t('checks.uptime30d'), t('checks.lastRun')]}
        >
          {items.map((c) => (
            <tr key={c.id} data-testid="check-row">
              <td>
                <Link to={`/checks/${c.id}`}>{c.name}</Link>
                {c.server_name && <div className="muted small">{c.server_name}</div>}
              </td>
              <td className="mono check-target">{checkTarget(c.spec)}</td>
              <td>
                <StatusBadge check={c} />
              </td>
              <td className="nowrap">{formatMs(c.last?.latency_ms, lang)}</td>
              <td className="nowrap">{formatPercent(c.uptime.h24, lang)}</td>
              <td className="nowrap">{formatPercent(c.uptime.d7, lang)}</td>
              <td className="nowrap">{formatPercent(c.uptime.d30, lang)}</td>
              <td className="nowrap" title={c.last?.message}>
                {formatTime(c.last?.at, lang)}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      {creating && (
        <CheckFormDialog
          open
          onClose={() => setCreating(false)}
          onSaved={(c) => {
            setCreating(false);
            navigate(`/checks/${c.id}`);
          }}
        />
      )}
    </>
  );
}
