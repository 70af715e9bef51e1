// One server: its settings, its credential's public facts, and the actions on it.
import { Suspense, lazy, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate, useParams } from 'react-router';
import { ApiError, api, call } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { ConfirmDialog } from '../components/Dialog';
import { StepUpCancelled, useStepUp } from '../components/StepUpDialog';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, CopyButton, DataTable, ErrorAlert, Loading, formatTime, useAction } from '../components/ui';
import { AgentPanel } from '../features/agents/AgentPanel';
import { ServerChecks } from '../features/checks/ServerChecks';
import { RunDialog } from '../features/runs/RunDialog';
import { RunRows, useRunHeaders } from '../features/runs/RunRows';
import { ScanPanel } from '../features/scan/ScanPanel';
import { HostKeyPanel } from '../features/servers/HostKeyPanel';
import { ServerFormDialog } from '../features/servers/ServerForm';

const ServerMetrics = lazy(() => import('../features/monitoring/ServerMetrics'));

export function ServerDetailPage() {
  const { id = '' } = useParams();
  const { t, i18n } = useTranslation();
  const { can, canOn } = useAuth();
  const navigate = useNavigate();
  const { withStepUp, dialog: stepUpDialog } = useStepUp();
  const confirming = useAction();
  const [editing, setEditing] = useState(false);
  const [confirm, setConfirm] = useState<'server' | 'credential' | null>(null);
  // Bumped after a scan, which may have recorded the host key at first contact.
  const [scans, setScans] = useState(0);
  const [running, setRunning] = useState(false);
  const runHeaders = useRunHeaders();
  const seesRuns = can('scripts.run') || can('audit.read');

  // The server, its credential's public facts and the jump server's name.
  const {
    data: loaded,
    error,
    reload: load,
  } = useApi(async () => {
    const s = await call(() => api.GET('/api/v1/servers/{id}', { params: { path: { id } } }));
    const credential = s.credential_kind
      ? await call(() => api.GET('/api/v1/servers/{id}/credential', { params: { path: { id } } })).catch((e) =>
          e instanceof ApiError && e.status === 404 ? null : Promise.reject(e),
        )
      : null;
    const jumpServer = s.jump_server_id
      ? await call(() => api.GET('/api/v1/servers/{id}', { params: { path: { id: s.jump_server_id! } } })).catch(() => null)
      : null;
    return { server: s, credential, jumpServer };
  }, [id]);
  const server = loaded?.server ?? null;
  const credential = loaded?.credential ?? null;
  const jumpServer = loaded?.jumpServer ?? null;

  const { data: recentRuns } = useApi(
    seesRuns &&
      (() =>
        call(() => api.GET('/api/v1/executions', { params: { query: { server_id: id, limit: 5 } } })).then(
          (p) => p.items,
          () => [],
        )),
    [id, seesRuns],
  );

  if (error) {
    return (
      <>
        <Breadcrumbs items={[{ label: t('nav.servers'), to: '/servers' }, { label: t('common.notFound') }]} />
        <ErrorAlert error={error} />
      </>
    );
  }
  if (!server) return <Loading />;
  const canWrite = canOn('servers.write', server.tags);
  const canTerminal = canOn('terminal.open', server.tags);
  const canRun = canOn('scripts.run', server.tags);
  const canCredential = canOn('credentials.write', server.tags);
  const change = server.endpoint_change;
  const confirmEndpoint = () =>
    void confirming.run(async () => {
      try {
        await withStepUp(() => call(() => api.POST('/api/v1/servers/{id}/endpoint/confirm', { params: { path: { id } }, body: {} })));
        await load();
      } catch (e) {
        if (!(e instanceof StepUpCancelled)) throw e;
      }
    });
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.servers'), to: '/servers' }, { label: server.name }]} />
      <PageHeader
        title={server.name}
        actions={
          (canWrite || canRun || canTerminal) && (
            <>
              {canTerminal && !change && (
                <Link className="btn btn-primary" to={`/servers/${id}/terminal`}>
                  {t('terminal.open')}
                </Link>
              )}
              {canRun && !change && (
                <Button variant={canTerminal ? undefined : 'primary'} onClick={() => setRunning(true)}>
                  {t('servers.runScript')}
                </Button>
              )}
              {canWrite && <Button onClick={() => setEditing(true)}>{t('common.edit')}</Button>}
              {canWrite && (
                <Button variant="danger" onClick={() => setConfirm('server')}>
                  {t('common.delete')}
                </Button>
              )}
            </>
          )
        }
      />
      {change && (
        <div className="alert alert-warning" role="alert" data-testid="endpoint-unconfirmed">
          <p>
            <strong>{t('servers.endpoint.unconfirmedTitle')}</strong>
          </p>
          <p>
            {t('servers.endpoint.unconfirmedText', { user: change.changed_by ?? '—', when: formatTime(change.changed_at, i18n.language) })}
          </p>
          {change.previous && (
            <dl className="facts">
              <dt>{t('servers.endpoint.previous')}</dt>
              <dd className="mono">
                {change.previous.ssh_user}@{change.previous.host}:{change.previous.port}
                {change.previous.jump_server_id && ` · ${t('servers.jumpServer')}: ${change.previous.jump_server_id}`}
              </dd>
              <dt>{t('servers.endpoint.current')}</dt>
              <dd className="mono">
                {server.ssh_user}@{server.host}:{server.port}
                {server.jump_server_id && ` · ${t('servers.jumpServer')}: ${jumpServer?.name ?? server.jump_server_id}`}
              </dd>
            </dl>
          )}
          {canCredential ? (
            <>
              <p className="small">{t('servers.endpoint.confirmHint')}</p>
              <Button variant="primary" busy={confirming.busy} onClick={confirmEndpoint}>
                {t('servers.endpoint.confirm')}
              </Button>
            </>
          ) : (
            <p className="small">{t('servers.endpoint.askSomeone')}</p>
          )}
          <ErrorAlert error={confirming.error} />
        </div>
      )}
      <section className="card">
        <h2>{t('servers.connection')}</h2>
        <dl className="facts">
          <dt>{t('fields.host')}</dt>
          <dd className="mono">
            {server.host}:{server.port}
          </dd>
          <dt>{t('fields.ssh_user')}</dt>
          <dd>{server.ssh_user}</dd>
          <dt>{t('fields.auth_method')}</dt>
          <dd>{server.auth_method === 'key' ? t('servers.authKey') : t('servers.authPassword')}</dd>
          <dt>{t('servers.jumpServer')}</dt>
          <dd>
            {server.jump_server_id ? (
              <Link to={`/servers/${server.jump_server_id}`} data-testid="jump-server">
                {jumpServer?.name ?? server.jump_server_id}
              </Link>
            ) : (
              t('servers.direct')
            )}
          </dd>
          <dt>{t('fields.tags')}</dt>
          <dd>{server.tags.length ? server.tags.map((tg) => <span key={tg} className="tag">{tg}</span>) : '—'}</dd>
          <dt>{t('fields.updated')}</dt>
          <dd>{formatTime(server.updated_at, i18n.language)}</dd>
        </dl>
        {server.notes && (
          // Long unbroken text (URLs, paths) must wrap rather than widen the page on phones.
          <p className="notes">
            {server.notes}
          </p>
        )}
      </section>
      <Suspense fallback={<Loading />}>
        <ServerMetrics server={server} />
      </Suspense>
      <HostKeyPanel key={`${server.updated_at}:${scans}`} server={server} />
      <AgentPanel server={server} onChanged={() => void load()} />
      <ScanPanel server={server} onScanned={() => setScans((n) => n + 1)} />
      <ServerChecks server={server} />
      <section className="card">
        <h2>{t('servers.credential')}</h2>
        {credential ? (
          <dl className="facts">
            <dt>{t('servers.kindLabel')}</dt>
            <dd>{t(`servers.kind.${credential.kind}`)}</dd>
            {credential.key_type && (
              <>
                <dt>{t('servers.keyType')}</dt>
                <dd className="mono">{credential.key_type}</dd>
              </>
            )}
            {credential.fingerprint && (
              <>
                <dt>{t('servers.fingerprint')}</dt>
                <dd className="mono">{credential.fingerprint}</dd>
              </>
            )}
            {credential.public_key && (
              <>
                <dt>{t('servers.publicKey')}</dt>
                <dd>
                  <div className="codeblock">
                    <code>{credential.public_key}</code>
                    <CopyButton text={credential.public_key} />
                  </div>
                </dd>
              </>
            )}
          </dl>
        ) : (
          <p>{t('servers.noCredential')}</p>
        )}
        {canCredential && (
          <div className="actions">
            <Button onClick={() => setEditing(true)}>{t('servers.setCredential')}</Button>
            {credential && (
              <Button variant="danger" onClick={() => setConfirm('credential')}>
                {t('servers.removeCredential')}
              </Button>
            )}
          </div>
        )}
      </section>
      {seesRuns && (
        <section className="card" aria-labelledby="recent-runs">
          <h2 id="recent-runs">{t('servers.recentRuns')}</h2>
          {!recentRuns ? (
            <Loading />
          ) : recentRuns.length === 0 ? (
            <p className="muted">{t('servers.noRuns')}</p>
          ) : (
            <DataTable caption={t('servers.recentRuns')} headers={runHeaders}>
              <RunRows items={recentRuns} />
            </DataTable>
          )}
          <p>
            <Link to="/runs">{t('servers.allRuns')}</Link>
          </p>
        </section>
      )}
      {running && <RunDialog open servers={[{ id: server.id, name: server.name }]} onClose={() => setRunning(false)} />}
      {editing && (
        <ServerFormDialog
          open
          server={server}
          onClose={() => setEditing(false)}
          onSaved={() => {
            setEditing(false);
            void load();
          }}
        />
      )}
      {stepUpDialog}
      <ConfirmDialog
        open={confirm === 'server'}
        title={t('servers.deleteTitle')}
        message={t('servers.deleteMessage', { name: server.name })}
        confirmLabel={t('common.delete')}
        onClose={() => setConfirm(null)}
        onConfirm={async () => {
          await call(() => api.DELETE('/api/v1/servers/{id}', { params: { path: { id } } }));
          navigate('/servers');
        }}
      />
      <ConfirmDialog
        open={confirm === 'credential'}
        title={t('servers.removeCredential')}
        message={t('servers.removeCredentialMessage', { name: server.name })}
        confirmLabel={t('common.delete')}
        onClose={() => setConfirm(null)}
        onConfirm={async () => {
          await call(() => api.DELETE('/api/v1/servers/{id}/credential', { params: { path: { id } } }));
          await load();
        }}
      />
    </>
  );
}
