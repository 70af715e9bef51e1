// The server page's connection section: test the connection, see the host key Steward trusts,
// and — when the server presented a different one — compare fingerprints and accept it.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, call, type Schemas, type Server } from '../../api/client';
import { useApi } from '../../api/useApi';
import { useAuth } from '../../auth/AuthContext';
import { ConfirmDialog } from '../../components/Dialog';
import { Button, ErrorAlert, Notice, formatTime } from '../../components/ui';

export function HostKeyPanel({ server }: { server: Server }) {
  const { t, i18n } = useTranslation();
  const { canOn } = useAuth();
  // Trusting a key decides where the credential goes: it needs credentials.write as well.
  const canTest = canOn('servers.write', server.tags);
  const canTrust = canTest && canOn('credentials.write', server.tags);
  const [result, setResult] = useState<Schemas['ConnectionTest'] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [accepting, setAccepting] = useState(false);
  const path = { params: { path: { id: server.id } } };

  // No key trusted yet: 404.
  const {
    data: key,
    error: loadError,
    reload: load,
  } = useApi(
    () =>
      call(() => api.GET('/api/v1/servers/{id}/host-key', { params: { path: { id: server.id } } })).catch((e) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [server.id],
  );

  const test = async () => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(await call(() => api.POST('/api/v1/servers/{id}/test-connection', path)));
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const outcome = () => {
    if (!result) return null;
    if (result.error) {
      return <Notice kind="warning">{t(`servers.problem.${result.error.code}`, { defaultValue: result.error.message })}</Notice>;
    }
    return (
      <Notice kind="success">
        {t('servers.testOk', { user: server.ssh_user, ms: result.latency_ms ?? 0 })}
        {result.host_key?.status === 'first_use' && <> {t('servers.testFirstUse', { fingerprint: result.host_key.fingerprint })}</>}
      </Notice>
    );
  };

  return (
    <section className="card" aria-labelledby="host-key-heading">
      <h2 id="host-key-heading">{t('servers.hostKey')}</h2>
      {key?.mismatch && (
        <div className="alert alert-error" role="alert">
          <p>{t('servers.hostKeyChanged')}</p>
          <dl className="facts">
            <dt>{t('servers.trustedFingerprint')}</dt>
            <dd className="mono">{key.fingerprint}</dd>
            <dt>{t('servers.presentedFingerprint')}</dt>
            <dd className="mono" data-testid="presented-fingerprint">
              {key.mismatch.fingerprint}
            </dd>
          </dl>
          {canTrust && (
            <Button variant="danger" onClick={() => setAccepting(true)}>
              {t('servers.acceptKey')}
            </Button>
          )}
        </div>
      )}
      {key ? (
        <dl className="facts">
          <dt>{t('servers.fingerprint')}</dt>
          <dd className="mono" data-testid="host-key-fingerprint">
            {key.fingerprint}
          </dd>
          <dt>{t('servers.keyType')}</dt>
          <dd className="mono">{key.algorithm}</dd>
          <dt>{t('servers.kindLabel')}</dt>
          <dd>
            {t(`servers.hostKeySource.${key.source}`, { defaultValue: key.source })} · {formatTime(key.trusted_at, i18n.language)}
          </dd>
        </dl>
      ) : (
        <p className="muted">{t('servers.noHostKey')}</p>
      )}
      {canTest && (
        <div className="actions">
          <Button onClick={() => void test()} busy={busy}>
            {t('servers.testConnection')}
          </Button>
        </div>
      )}
      {canTest && server.endpoint_change && <p className="muted small">{t('servers.endpoint.testUnconfirmed')}</p>}
      <div aria-live="polite">{outcome()}</div>
      <ErrorAlert error={error ?? loadError} />
      <ConfirmDialog
        open={accepting}
        title={t('servers.acceptKey')}
        message={t('servers.acceptKeyMessage', { fingerprint: key?.mismatch?.fingerprint, name: server.name })}
        confirmLabel={t('servers.acceptKey')}
        onClose={() => setAccepting(false)}
        onConfirm={async () => {
          if (!key?.mismatch) return;
          await call(() => api.POST('/api/v1/servers/{id}/host-key/accept', { ...path, body: { fingerprint: key.mismatch!.fingerprint } }));
          setResult(null);
          await load();
        }}
      />
    </section>
  );
}
