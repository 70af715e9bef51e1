// Adding or editing a server, and setting its credential.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call, type Schemas, type Server } from '../../api/client';
import { useApi } from '../../api/useApi';
import { useAuth } from '../../auth/AuthContext';
import { parseTags } from './tags';
import { Dialog } from '../../components/Dialog';
import { StepUpCancelled, useStepUp } from '../../components/StepUpDialog';
import { Button, CopyButton, ErrorAlert, Notice, SelectField, TextArea, TextField, useAction } from '../../components/ui';

type CredentialChoice = 'none' | 'generate' | 'private_key' | 'password';

export function ServerFormDialog({
  open,
  server,
  onClose,
  onSaved,
}: {
  open: boolean;
  server?: Server;
  onClose: () => void;
  onSaved: (s: Server) => void;
}) {
  const { t } = useTranslation();
  const { busy, error, run } = useAction();
  const { me, can, canOn } = useAuth();
  const { withStepUp, dialog: stepUpDialog } = useStepUp();
  const [name, setName] = useState(server?.name ?? '');
  const [host, setHost] = useState(server?.host ?? '');
  const [port, setPort] = useState(String(server?.port ?? 22));
  const [sshUser, setSshUser] = useState(server?.ssh_user ?? 'root');
  const [authMethod, setAuthMethod] = useState<'key' | 'password'>(server?.auth_method ?? 'key');
  const [tags, setTags] = useState((server?.tags ?? []).join(', '));
  const [notes, setNotes] = useState(server?.notes ?? '');
  const [jumpServerId, setJumpServerId] = useState(server?.jump_server_id ?? '');
  const [monitoring, setMonitoring] = useState<Schemas['Monitoring']>(server?.monitoring ?? 'agentless');
  const [interval, setInterval_] = useState(String(server?.metrics_interval_secs ?? 10));
  const [credential, setCredential] = useState<CredentialChoice>(server || !can('credentials.write') ? 'none' : 'generate');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [secret, setSecret] = useState({ key: '', passphrase: '', password: '' });
  const [publicKey, setPublicKey] = useState<string | null>(null);
  const [saved, setSaved] = useState<Server | null>(null);

  // Jump servers: any other server that is itself reached directly.
  const { data: jumpCandidates = [] } = useApi(
    open &&
      (() =>
        call(() => api.GET('/api/v1/servers', { params: { query: { limit: 500 } } })).then(
          (p) => p.items.filter((s) => s.id !== server?.id && !s.jump_server_id),
          (): Server[] => [],
        )),
    [open, server?.id],
  );

  // What an endpoint change does to the credential: kept by someone who may manage it (after a
  // step-up), otherwise detached until such a person confirms the new endpoint.
  const endpointChanged =
    !!server &&
    (host.trim() !== server.host || Number(port) !== server.port || sshUser.trim() !== server.ssh_user || (jumpServerId || null) !== (server.jump_server_id ?? null));
  const mayVouch = server ? canOn('credentials.write', server.tags) && canOn('credentials.write', parseTags(tags)) : can('credentials.write');
  const mayManageCredential = server ? canOn('credentials.write', server.tags) : can('credentials.write');
  const writeScope = me?.scopes?.['servers.write'];

  const validate = () => {
    const e: Record<string, string> = {};
    if (!name.trim()) e.name = t('validation.required');
    if (!host.trim()) e.host = t('validation.required');
    const p = Number(port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) e.port = t('validation.port');
    if (!sshUser.trim()) e.ssh_user = t('validation.required');
    const iv = Number(interval);
    if (!Number.isInteger(iv) || iv < 1 || iv > 3600) e.metrics_interval_secs = t('validation.interval');
    if (credential === 'private_key' && !secret.key.trim()) e.private_key = t('validation.required');
    if (credential === 'password' && !secret.password) e.ssh_password = t('validation.required');
    setErrors(e);
    return Object.keys(e).length === 0;
  };

  const submit = async () => {
    if (!validate()) return;
    await run(async () => {
      const body: Schemas['ServerInput'] = {
        name,
        host,
        port: Number(port),
        ssh_user: sshUser,
        auth_method: authMethod,
        tags: parseTags(tags),
        notes,
        jump_server_id: jumpServerId || null,
        monitoring,
        metrics_interval_secs: Number(interval),
      };
      let result: Server;
      try {
        result = server
          ? await withStepUp(() => call(() => api.PUT('/api/v1/servers/{id}', { params: { path: { id: server.id } }, body })))
          : await call(() => api.POST('/api/v1/servers', { body }));
      } catch (e) {
        if (e instanceof StepUpCancelled) return;
        throw e;
      }
      if (credential !== 'none') {
        const input: Schemas['CredentialInput'] =
          credential === 'generate'
            ? { kind: 'generate' }
            : credential === 'private_key'
              ? { kind: 'private_key', private_key: secret.key, passphrase: secret.passphrase || null }
              : { kind: 'password', password: secret.password };
        const info = await call(() =>
          api.PUT('/api/v1/servers/{id}/credential', { params: { path: { id: result.id } }, body: input }),
        );
        if (credential === 'generate' && info.public_key) {
          setPublicKey(info.public_key);
          setSaved(result);
          return;
        }
      }
      onSaved(result);
    });
  };

  if (publicKey && saved) {
    return (
      <Dialog
        open={open}
        title={t('servers.keyGenerated')}
        onClose={() => onSaved(saved)}
        footer={
          <Button variant="primary" onClick={() => onSaved(saved)}>
            {t('common.done')}
          </Button>
        }
      >
        <p>{t('servers.pastePublicKey', { user: saved.ssh_user, host: saved.host })}</p>
        <div className="codeblock" data-testid="public-key">
          <code>{publicKey}</code>
          <CopyButton text={publicKey} />
        </div>
      </Dialog>
    );
  }

  return (
    <>
      <Dialog
        open={open}
        wide
        title={server ? t('servers.edit') : t('servers.add')}
        onClose={onClose}
        onSubmit={() => void submit()}
        footer={
          <>
            <Button onClick={onClose}>{t('common.cancel')}</Button>
            <Button type="submit" variant="primary" busy={busy}>
              {t('common.save')}
            </Button>
          </>
        }
      >
        <div className="form-grid">
          <TextField label={t('fields.name')} value={name} onChange={(e) => setName(e.target.value)} error={errors.name} required />
          <TextField
            label={t('fields.host')}
            value={host}
            onChange={(e) => setHost(e.target.value)}
            error={errors.host}
            placeholder="10.0.0.5"
            required
          />
          <TextField
            label={t('fields.port')}
            type="number"
            min={1}
            max={65535}
            value={port}
            onChange={(e) => setPort(e.target.value)}
            error={errors.port}
          />
          <TextField label={t('fields.ssh_user')} value={sshUser} onChange={(e) => setSshUser(e.target.value)} error={errors.ssh_user} />
          <SelectField
            label={t('fields.auth_method')}
            value={authMethod}
            onChange={(e) => setAuthMethod(e.target.value as 'key' | 'password')}
          >
            <option value="key">{t('servers.authKey')}</option>
            <option value="password">{t('servers.authPassword')}</option>
          </SelectField>
          <TextField
            label={t('fields.tags')}
            hint={writeScope ? t('servers.tagsScopeHint', { tags: writeScope.join(', ') }) : t('servers.tagsHint')}
            value={tags}
            onChange={(e) => setTags(e.target.value)}
          />
          <SelectField
            label={t('servers.jumpServer')}
            hint={t('servers.jumpServerHint')}
            value={jumpServerId}
            onChange={(e) => setJumpServerId(e.target.value)}
          >
            <option value="">{t('servers.noJumpServer')}</option>
            {server?.jump_server_id && !jumpCandidates.some((c) => c.id === server.jump_server_id) && (
              <option value={server.jump_server_id}>{server.jump_server_id}</option>
            )}
            {jumpCandidates.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name} ({c.host})
              </option>
            ))}
          </SelectField>
          <SelectField
            label={t('servers.monitoring')}
            hint={t('servers.monitoringHint')}
            value={monitoring}
            onChange={(e) => setMonitoring(e.target.value as Schemas['Monitoring'])}
          >
            {(['agentless', 'agent', 'off'] as const).map((m) => (
              <option key={m} value={m}>
                {t(`servers.monitoringChoice.${m}`)}
              </option>
            ))}
          </SelectField>
          <TextField
            label={t('servers.metricsInterval')}
            hint={t('servers.metricsIntervalHint')}
            type="number"
            min={1}
            max={3600}
            value={interval}
            onChange={(e) => setInterval_(e.target.value)}
            error={errors.metrics_interval_secs}
          />
        </div>
        <TextArea label={t('fields.notes')} value={notes} onChange={(e) => setNotes(e.target.value)} rows={3} />
        {endpointChanged && (server?.credential_kind || server?.endpoint_change) && (
          <Notice kind="warning">
            <span data-testid="endpoint-change-notice">{mayVouch ? t('servers.endpoint.keepsCredential') : t('servers.endpoint.detachesCredential')}</span>
          </Notice>
        )}
        {mayManageCredential && (
          <fieldset className="credential-choice">
            <legend>{t('servers.credential')}</legend>
            {(['none', 'generate', 'private_key', 'password'] as const).map((c) => (
              <label key={c} className="radio">
                <input type="radio" name="credential" value={c} checked={credential === c} onChange={() => setCredential(c)} />
                {t(`servers.credentialChoice.${c}`)}
              </label>
            ))}
            {credential === 'private_key' && (
              <>
                <TextArea
                  label={t('fields.private_key')}
                  value={secret.key}
                  onChange={(e) => setSecret({ ...secret, key: e.target.value })}
                  error={errors.private_key}
                  rows={6}
                  spellCheck={false}
                  className="mono"
                />
                <TextField
                  label={t('fields.passphrase')}
                  type="password"
                  value={secret.passphrase}
                  hint={t('servers.passphraseHint')}
                  onChange={(e) => setSecret({ ...secret, passphrase: e.target.value })}
                  autoComplete="off"
                />
              </>
            )}
            {credential === 'password' && (
              <TextField
                label={t('fields.ssh_password')}
                type="password"
                value={secret.password}
                onChange={(e) => setSecret({ ...secret, password: e.target.value })}
                error={errors.ssh_password}
                autoComplete="off"
              />
            )}
            {server && credential !== 'none' && server.credential_kind && <Notice kind="warning">{t('servers.replacesCredential')}</Notice>}
          </fieldset>
        )}
        <ErrorAlert error={error} />
      </Dialog>
      {stepUpDialog}
    </>
  );
}
