// The server page's collection section: how metrics arrive (agentless over SSH, or the agent),
// the agent's state, and enrolling (a token shown once, with the commands that install it) or
// revoking it.
import { useCallback, useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call, type Schemas, type Server } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { ConfirmDialog, Dialog } from '../components/Dialog';
import { Button, CopyButton, ErrorAlert, Notice, formatTime } from '../components/ui';

export function AgentPanel({ server, onChanged }: { server: Server; onChanged: () => void }) {
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const [agent, setAgent] = useState<Schemas['AgentInfo'] | null>(null);
  const [enrollment, setEnrollment] = useState<Schemas['AgentEnrollment'] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [revoking, setRevoking] = useState(false);
  const path = { params: { path: { id: server.id } } };

  const load = useCallback(async () => {
    try {
      setAgent(await call(() => api.GET('/api/v1/servers/{id}/agent', { params: { path: { id: server.id } } })));
    } catch (e) {
      setError(e);
    }
  }, [server.id]);
  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), 10_000);
    return () => window.clearInterval(timer);
  }, [load]);

  const enroll = async () => {
    setBusy(true);
    setError(null);
    try {
      const e = await call(() => api.POST('/api/v1/servers/{id}/agent', path));
      setEnrollment(e);
      setAgent(e.agent);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const mode = agent?.monitoring ?? server.monitoring;
  return (
    <section className="card" aria-labelledby="collection-heading">
      <h2 id="collection-heading">{t('agent.heading')}</h2>
      <dl className="facts">
        <dt>{t('agent.mode')}</dt>
        <dd data-testid="monitoring-mode">{t(`servers.monitoringChoice.${mode}`)}</dd>
        <dt>{t('agent.interval')}</dt>
        <dd>{t('agent.everySeconds', { n: server.metrics_interval_secs })}</dd>
        {agent?.enrolled && (
          <>
            <dt>{t('agent.state')}</dt>
            <dd data-testid="agent-state">
              <span className={`badge ${agent.connected ? 'badge-ok' : 'badge-muted'}`}>
                {agent.connected ? t('agent.connected') : t('agent.disconnected')}
              </span>
              {agent.last_seen_at && <> · {t('agent.lastSeen', { time: formatTime(agent.last_seen_at, i18n.language) })}</>}
            </dd>
            {agent.agent_version && (
              <>
                <dt>{t('agent.version')}</dt>
                <dd className="mono">
                  {agent.agent_version} · {agent.hostname} · {agent.os} · {agent.arch}
                </dd>
              </>
            )}
          </>
        )}
      </dl>
      {mode === 'agentless' && <p className="muted">{t('agent.agentlessExplained')}</p>}
      {can('servers.write') && (
        <div className="actions">
          <Button onClick={() => void enroll()} busy={busy}>
            {agent?.enrolled ? t('agent.newToken') : t('agent.enroll')}
          </Button>
          {agent?.enrolled && (
            <Button variant="danger" onClick={() => setRevoking(true)}>
              {t('agent.revoke')}
            </Button>
          )}
        </div>
      )}
      <ErrorAlert error={error} />
      <Dialog
        open={enrollment !== null}
        title={t('agent.enrolledTitle')}
        onClose={() => setEnrollment(null)}
        wide
        footer={
          <Button variant="primary" onClick={() => setEnrollment(null)}>
            {t('common.done')}
          </Button>
        }
      >
        {enrollment && (
          <>
            <Notice kind="warning">{t('agent.tokenOnce')}</Notice>
            <p>{t('agent.installHint', { hub: enrollment.hub_url })}</p>
            <pre className="mono install-command" data-testid="install-command">
              {enrollment.install_command}
            </pre>
            <CopyButton text={enrollment.install_command} label={t('agent.copyCommand')} />
            <p>{t('agent.tokenLabel')}</p>
            <pre className="mono" data-testid="agent-token">
              {enrollment.token}
            </pre>
            <CopyButton text={enrollment.token} label={t('agent.copyToken')} />
          </>
        )}
      </Dialog>
      <ConfirmDialog
        open={revoking}
        title={t('agent.revoke')}
        message={t('agent.revokeMessage', { name: server.name })}
        confirmLabel={t('agent.revoke')}
        onClose={() => setRevoking(false)}
        onConfirm={async () => {
          await call(() => api.DELETE('/api/v1/servers/{id}/agent', path));
          await load();
          onChanged();
        }}
      />
    </section>
  );
}
