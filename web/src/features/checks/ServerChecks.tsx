// The server page's health checks: their status, response time and uptime, and adding one for
// this server.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate } from 'react-router';
import { api, call, type Server } from '../../api/client';
import { useApi } from '../../api/useApi';
import { useAuth } from '../../auth/AuthContext';
import { Button, DataTable, ErrorAlert, Loading } from '../../components/ui';
import { CheckFormDialog } from './CheckForm';
import { StatusBadge, checkTarget, formatMs, formatPercent } from './checkDisplay';

export function ServerChecks({ server }: { server: Server }) {
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const navigate = useNavigate();
  const { data: items, error } = useApi(() => call(() => api.GET('/api/v1/checks', { params: { query: { server_id: server.id } } })), [server.id]);
  const [adding, setAdding] = useState(false);

  return (
    <section className="card" aria-labelledby="server-checks">
      <div className="scan-head">
        <h2 id="server-checks">{t('nav.checks')}</h2>
        {can('checks.write') && <Button onClick={() => setAdding(true)}>{t('checks.create')}</Button>}
      </div>
      <ErrorAlert error={error} />
      {!items ? (
        !error && <Loading />
      ) : items.length === 0 ? (
        <p className="muted">{t('checks.noneForServer')}</p>
      ) : (
        <DataTable caption={t('nav.checks')} headers={[t('fields.name'), t('checks.target'), t('checks.statusFilter'), t('checks.responseTime'), t('checks.uptime24h')]}>
          {items.map((c) => (
            <tr key={c.id}>
              <td>
                <Link to={`/checks/${c.id}`}>{c.name}</Link>
              </td>
              <td className="mono check-target">{checkTarget(c.spec)}</td>
              <td>
                <StatusBadge check={c} />
              </td>
              <td className="nowrap">{formatMs(c.last?.latency_ms, i18n.language)}</td>
              <td className="nowrap">{formatPercent(c.uptime.h24, i18n.language)}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {adding && (
        <CheckFormDialog
          open
          serverId={server.id}
          serverName={server.name}
          onClose={() => setAdding(false)}
          onSaved={(c) => {
            setAdding(false);
            navigate(`/checks/${c.id}`);
          }}
        />
      )}
    </section>
  );
}
