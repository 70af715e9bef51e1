// The server page's collection section: how metrics arrive (agentless over SSH, or the agent),
// the agent's state, installing or uninstalling it over SSH (step-up, then the steps the server
// reports), enrolling by hand (a token shown once, with a self-contained install command) or
// revoking it.
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, call, postStream, type Schemas, type Server } from '../../api/client';
import { useApi } from '../../api/useApi';
import { useAuth } from '../../auth/AuthContext';
import { ConfirmDialog, Dialog } from '../../components/Dialog';
import { StepUpCancelled, useStepUp } from '../../components/StepUpDialog';
import { Button, CopyButton, ErrorAlert, Notice, Spinner, formatTime } from '../../components/ui';

type Step = Schemas['AgentInstallStep'];
type Operation = {
  kind: 'install' | 'uninstall';
  running: boolean;
  steps: Step[];
  warnings: Schemas['AgentInstallWarning'][];
  result?: Schemas['AgentInstallResult'];
  error?: unknown;
};

/** The steps an install or uninstall reported (also on failure, from the error's details). */
function StepList({ steps }: { steps: Step[] }) {
  const { t } = useTranslation();
  if (steps.length === 0) return null;
  return (
    <ol className="install-steps" data-testid="install-steps">
      {steps.map((s, i) => (
        <li key={`${s.name}-${i}`} className={s.ok ? 'step-ok' : 'step-failed'}>
          <span className={`badge ${s.ok ? 'badge-ok' : 'badge-live'}`}>{s.ok ? t('agent.stepOk') : t('agent.stepFailed')}</span>{' '}
          <strong>{t(`agent.steps.${s.name}`, { defaultValue: s.name })}</strong>
          {s.detail && <div className="mono muted step-detail">{s.detail}</div>}
        </li>
      ))}
    </ol>
  );
}

/** Installs over SSH with the steps streamed (`application/x-ndjson`) as they end. */
async function installStreamed(serverId: string, onStep: (s: Step) => void): Promise<Schemas['AgentInstallResult']> {
  let result: Schemas['AgentInstallResult'] | undefined;
  let failure: ApiError | undefined;
  await postStream(`/api/v1/servers/${encodeURIComponent(serverId)}/agent/install`, {}, (line) => {
    const l = line as Schemas['AgentInstallProgress'];
    if (l.type === 'step') onStep(l.step);
    else if (l.type === 'result') result = l.result;
    else failure = new ApiError(l.status, l.error.code, l.error.message, (l.error.details ?? {}) as Record<string, unknown>);
  });
  if (failure) throw failure;
  if (!result) throw new ApiError(0, 'network_error', 'the install ended without a result');
  return result;
}

function stepsOf(e: unknown): Step[] {
  if (e instanceof ApiError && Array.isArray(e.details.steps)) return e.details.steps as Step[];
  return [];
}

export function AgentPanel({ server, onChanged }: { server: Server; onChanged: () => void }) {
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const [enrollment, setEnrollment] = useState<Schemas['AgentEnrollment'] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [revoking, setRevoking] = useState(false);
  const [uninstalling, setUninstalling] = useState(false);
  const [op, setOp] = useState<Operation | null>(null);
  const { withStepUp, dialog: stepUpDialog } = useStepUp();
  const path = { params: { path: { id: server.id } } };

  const {
    data: agent,
    setData: setAgent,
    error: loadError,
    reload: load,
  } = useApi(() => call(() => api.GET('/api/v1/servers/{id}/agent', { params: { path: { id: server.id } } })), [server.id]);
  useEffect(() => {
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

  const runOperation = async (kind: 'install' | 'uninstall') => {
    setError(null);
    setOp({ kind, running: true, steps: [], warnings: [] });
    try {
      if (kind === 'install') {
        // Streamed: each step shows as it ends.
        const r = await withStepUp(() => installStreamed(server.id, (step) => setOp((o) => (o ? { ...o, steps: [...o.steps, step] } : o))));
        setOp({ kind, running: false, steps: r.steps, warnings: r.warnings, result: r });
        setAgent(r.agent);
      } else {
        const r = await withStepUp(() => call(() => api.POST('/api/v1/servers/{id}/agent/uninstall', path)));
        setOp({ kind, running: false, steps: r.steps, warnings: r.warnings });
        setAgent(r.agent);
      }
      onChanged();
    } catch (e) {
      if (e instanceof StepUpCancelled) {
        setOp(null);
        return;
      }
      setOp({ kind, running: false, steps: stepsOf(e), warnings: [], error: e });
      void load();
    }
  };

  // Right after an install, follow the agent until it connects.
  const waiting = op?.kind === 'install' && !op.running && !op.error && !agent?.connected;
  useEffect(() => {
    if (!waiting) return;
    const timer = window.setInterval(() => void load(), 1_000);
    return () => window.clearInterval(timer);
  }, [waiting, load]);

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
          <Button variant="primary" onClick={() => void runOperation('install')} busy={op?.running && op.kind === 'install'} disabled={op?.running}>
            {agent?.enrolled ? t('agent.reinstall') : t('agent.install')}
          </Button>
          <Button onClick={() => void enroll()} busy={busy}>
            {agent?.enrolled ? t('agent.newToken') : t('agent.enroll')}
          </Button>
          {agent?.enrolled && (
            <>
              <Button variant="danger" onClick={() => setUninstalling(true)} disabled={op?.running}>
                {t('agent.uninstall')}
              </Button>
              <Button variant="danger" onClick={() => setRevoking(true)}>
                {t('agent.revoke')}
              </Button>
            </>
          )}
        </div>
      )}
      <ErrorAlert error={error ?? loadError} />
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
      <Dialog
        open={op !== null}
        title={op?.kind === 'uninstall' ? t('agent.uninstallTitle') : t('agent.installTitle')}
        onClose={() => {
          if (!op?.running) setOp(null);
        }}
        wide
        footer={
          <Button variant="primary" onClick={() => setOp(null)} disabled={op?.running}>
            {t('common.done')}
          </Button>
        }
      >
        {op && (
          <div data-testid="install-result">
            {op.running && (
              <p>
                <Spinner /> {op.kind === 'install' ? t('agent.installing', { name: server.name }) : t('agent.uninstalling', { name: server.name })}
              </p>
            )}
            {!op.running && !op.error && op.kind === 'install' && op.result && (
              <Notice kind="success">
                {t('agent.installed', {
                  mode: t(`agent.installMode.${op.result.mode}`),
                  service: t(`agent.service.${op.result.service}`),
                  path: op.result.binary_path,
                })}
              </Notice>
            )}
            {!op.running && !op.error && op.kind === 'uninstall' && <Notice kind="success">{t('agent.uninstalled')}</Notice>}
            <ErrorAlert error={op.error} />
            {op.warnings.map((w) => (
              <Notice key={w.code} kind="warning">
                {t(`agent.warnings.${w.code}`, { defaultValue: w.message, hub: op.result?.hub_url ?? '' })}
              </Notice>
            ))}
            <StepList steps={op.steps} />
            {!op.running && op.kind === 'install' && !op.error && (
              <p data-testid="install-agent-state">
                <span className={`badge ${agent?.connected ? 'badge-ok' : 'badge-muted'}`}>
                  {agent?.connected ? t('agent.connected') : t('agent.disconnected')}
                </span>
              </p>
            )}
          </div>
        )}
      </Dialog>
      {stepUpDialog}
      <ConfirmDialog
        open={uninstalling}
        title={t('agent.uninstall')}
        message={t('agent.uninstallMessage', { name: server.name })}
        confirmLabel={t('agent.uninstall')}
        onClose={() => setUninstalling(false)}
        onConfirm={async () => {
          void runOperation('uninstall');
        }}
      />
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
