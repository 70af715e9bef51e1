// The landing page: the fleet at a glance and the account's state.
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { api, call } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { PageHeader } from '../components/Layout';
import { Notice } from '../components/ui';
import { FleetOverview } from '../features/monitoring/FleetOverview';

export function DashboardPage() {
  const { t } = useTranslation();
  const { me, can } = useAuth();
  const readsServers = can('servers.read');
  const { data: total } = useApi(
    readsServers && (() => call(() => api.GET('/api/v1/servers', { params: { query: { limit: 1 } } })).then((p) => p.total)),
    [readsServers],
  );
  const { data: tags = [] } = useApi(readsServers && (() => call(() => api.GET('/api/v1/tags'))), [readsServers]);
  return (
    <>
      <PageHeader title={t('dashboard.title')} />
      {me && !me.totp_enabled && (
        <Notice kind="warning">
          {t('dashboard.enable2fa')} <Link to="/profile/security">{t('dashboard.enable2faLink')}</Link>
        </Notice>
      )}
      {can('servers.read') && <FleetOverview />}
      <div className="cards">
        {can('servers.read') && (
          <section className="card stat">
            <h2>{t('nav.servers')}</h2>
            <p className="stat-value">{total ?? '…'}</p>
            <Link to="/servers">{t('dashboard.viewServers')}</Link>
          </section>
        )}
        {tags.length > 0 && (
          <section className="card">
            <h2>{t('dashboard.groups')}</h2>
            <ul className="tag-list">
              {tags.map((tc) => (
                <li key={tc.tag}>
                  <Link to={`/servers?tag=${encodeURIComponent(tc.tag)}`} className="tag">
                    {tc.tag}
                  </Link>{' '}
                  <span className="muted">{tc.count}</span>
                </li>
              ))}
            </ul>
          </section>
        )}
        <section className="card">
          <h2>{t('dashboard.account')}</h2>
          <p>{t('dashboard.signedInAs', { name: me?.username })}</p>
          <p className="muted small">{me?.roles.join(', ')}</p>
        </section>
      </div>
    </>
  );
}
