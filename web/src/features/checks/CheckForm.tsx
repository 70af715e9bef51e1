// Creating or editing a health check: the fields of its kind (HTTP, TCP, DNS), the server it
// belongs to, how often it runs and how long a run may take.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call, type Schemas, type Server } from '../../api/client';
import { useApi } from '../../api/useApi';
import { Dialog } from '../../components/Dialog';
import { Button, Checkbox, ErrorAlert, SelectField, TextField, useAction } from '../../components/ui';

export type Check = Schemas['Check'];
type Kind = Schemas['CheckSpec']['type'];
const RECORD_TYPES: Schemas['DnsRecordType'][] = ['A', 'AAAA', 'CNAME', 'MX', 'TXT'];

/** The form's state: every kind's fields, so switching kinds keeps what was typed. */
function initial(check?: Check, serverId?: string) {
  const s = check?.spec;
  return {
    name: check?.name ?? '',
    serverId: check ? (check.server_id ?? '') : (serverId ?? ''),
    kind: (s?.type ?? 'http') as Kind,
    interval: String(check?.interval_secs ?? 60),
    timeout: String(check?.timeout_secs ?? 10),
    enabled: check?.enabled ?? true,
    url: s?.type === 'http' ? s.url : 'https://',
    method: s?.type === 'http' ? (s.method ?? 'GET') : 'GET',
    expectedStatus: s?.type === 'http' ? (s.expected_status ?? '200-399') : '200-399',
    keyword: s?.type === 'http' ? (s.keyword ?? '') : '',
    keywordAbsent: s?.type === 'http' ? !!s.keyword_absent : false,
    followRedirects: s?.type === 'http' ? s.follow_redirects !== false : true,
    verifyTls: s?.type === 'http' ? s.verify_tls !== false : true,
    maxResponseMs: s?.type === 'http' && s.max_response_ms ? String(s.max_response_ms) : '',
    certWarnDays: s?.type === 'http' ? String(s.cert_warn_days ?? 14) : '14',
    host: s?.type === 'tcp' ? s.host : '',
    port: s?.type === 'tcp' ? String(s.port) : '',
    dnsName: s?.type === 'dns' ? s.name : '',
    recordType: s?.type === 'dns' ? (s.record_type ?? 'A') : ('A' as Schemas['DnsRecordType']),
    resolver: s?.type === 'dns' ? (s.resolver ?? '') : '',
    expected: s?.type === 'dns' ? (s.expected ?? '') : '',
  };
}
type FormState = ReturnType<typeof initial>;

function specOf(f: FormState): Schemas['CheckSpec'] {
  switch (f.kind) {
    case 'http':
      return {
        type: 'http',
        url: f.url.trim(),
        method: f.method,
        expected_status: f.expectedStatus.trim(),
        keyword: f.keyword || null,
        keyword_absent: f.keyword ? f.keywordAbsent : false,
        follow_redirects: f.followRedirects,
        verify_tls: f.verifyTls,
        max_response_ms: f.maxResponseMs ? Number(f.maxResponseMs) : null,
        cert_warn_days: Number(f.certWarnDays || 0),
      };
    case 'tcp':
      return { type: 'tcp', host: f.host.trim(), port: Number(f.port) };
    case 'dns':
      return {
        type: 'dns',
        name: f.dnsName.trim(),
        record_type: f.recordType,
        resolver: f.resolver.trim() || null,
        expected: f.expected.trim() || null,
      };
  }
}

export function CheckFormDialog({
  open,
  check,
  serverId,
  serverName,
  onClose,
  onSaved,
}: {
  open: boolean;
  check?: Check;
  /** The server a new check belongs to, preselected, and its name. */
  serverId?: string;
  serverName?: string;
  onClose: () => void;
  onSaved: (c: Check) => void;
}) {
  const { t } = useTranslation();
  const { busy, error, run } = useAction();
  const [f, setF] = useState(() => initial(check, serverId));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const { data: servers = [] } = useApi(
    open &&
      (() =>
        call(() => api.GET('/api/v1/servers', { params: { query: { limit: 500 } } })).then(
          (p) => p.items,
          (): Server[] => [],
        )),
    [open],
  );
  const set = <K extends keyof FormState>(k: K, v: FormState[K]) => setF((old) => ({ ...old, [k]: v }));

  const validate = () => {
    const e: Record<string, string> = {};
    const whole = (s: string, min: number, max: number) => {
      const n = Number(s);
      return Number.isInteger(n) && n >= min && n <= max;
    };
    if (!f.name.trim()) e.name = t('validation.required');
    if (!whole(f.interval, 10, 86400)) e.interval = t('checks.intervalRange');
    if (!whole(f.timeout, 1, 60) || Number(f.timeout) >= Number(f.interval)) e.timeout = t('checks.timeoutRange');
    if (f.kind === 'http' && !/^https?:\/\/\S+$/.test(f.url.trim())) e.url = t('checks.urlInvalid');
    if (f.kind === 'tcp') {
      if (!f.host.trim()) e.host = t('validation.required');
      if (!whole(f.port, 1, 65535)) e.port = t('validation.port');
    }
    if (f.kind === 'dns' && !f.dnsName.trim()) e.dnsName = t('validation.required');
    setErrors(e);
    return Object.keys(e).length === 0;
  };

  const submit = async () => {
    if (!validate()) return;
    await run(async () => {
      const body: Schemas['CheckInput'] = {
        name: f.name.trim(),
        server_id: f.serverId || null,
        spec: specOf(f),
        interval_secs: Number(f.interval),
        timeout_secs: Number(f.timeout),
        enabled: f.enabled,
      };
      const saved = check
        ? await call(() => api.PUT('/api/v1/checks/{id}', { params: { path: { id: check.id } }, body }))
        : await call(() => api.POST('/api/v1/checks', { body }));
      onSaved(saved);
    });
  };

  return (
    <Dialog
      open={open}
      wide
      title={check ? t('checks.edit') : t('checks.create')}
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
        <TextField label={t('fields.name')} value={f.name} onChange={(e) => set('name', e.target.value)} error={errors.name} required />
        <SelectField label={t('checks.kind')} value={f.kind} onChange={(e) => set('kind', e.target.value as Kind)}>
          <option value="http">{t('checks.kinds.http')}</option>
          <option value="tcp">{t('checks.kinds.tcp')}</option>
          <option value="dns">{t('checks.kinds.dns')}</option>
        </SelectField>
        <SelectField label={t('checks.server')} hint={t('checks.serverHint')} value={f.serverId} onChange={(e) => set('serverId', e.target.value)}>
          <option value="">{t('checks.standalone')}</option>
          {f.serverId && !servers.some((s) => s.id === f.serverId) && (
            // Until the list arrives (or if the server is not in it), the chosen one stays shown.
            <option value={f.serverId}>{(f.serverId === check?.server_id ? check?.server_name : serverName) ?? f.serverId}</option>
          )}
          {servers.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name} ({s.host})
            </option>
          ))}
        </SelectField>
        <TextField
          label={t('checks.interval')}
          type="number"
          min={10}
          max={86400}
          value={f.interval}
          onChange={(e) => set('interval', e.target.value)}
          error={errors.interval}
        />
        <TextField
          label={t('checks.timeout')}
          type="number"
          min={1}
          max={60}
          value={f.timeout}
          onChange={(e) => set('timeout', e.target.value)}
          error={errors.timeout}
        />
      </div>
      {f.kind === 'http' && (
        <fieldset className="check-kind">
          <legend>{t('checks.kinds.http')}</legend>
          <TextField label={t('fields.spec.url')} value={f.url} onChange={(e) => set('url', e.target.value)} error={errors.url} placeholder={t('checks.urlPlaceholder')} required />
          <div className="form-grid">
            <SelectField label={t('checks.method')} value={f.method} onChange={(e) => set('method', e.target.value as Schemas['HttpMethod'])}>
              {(['GET', 'HEAD'] as const).map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </SelectField>
            <TextField
              label={t('fields.spec.expected_status')}
              hint={t('checks.expectedStatusHint')}
              value={f.expectedStatus}
              onChange={(e) => set('expectedStatus', e.target.value)}
            />
            <TextField
              label={t('fields.spec.keyword')}
              hint={t('checks.keywordHint')}
              value={f.keyword}
              disabled={f.method === 'HEAD'}
              onChange={(e) => set('keyword', e.target.value)}
            />
            <TextField
              label={t('fields.spec.max_response_ms')}
              hint={t('checks.maxResponseHint')}
              type="number"
              min={1}
              value={f.maxResponseMs}
              onChange={(e) => set('maxResponseMs', e.target.value)}
            />
            <TextField
              label={t('fields.spec.cert_warn_days')}
              hint={t('checks.certWarnHint')}
              type="number"
              min={0}
              max={365}
              value={f.certWarnDays}
              onChange={(e) => set('certWarnDays', e.target.value)}
            />
          </div>
          <Checkbox label={t('checks.keywordAbsent')} checked={f.keywordAbsent} disabled={!f.keyword} onChange={(e) => set('keywordAbsent', e.target.checked)} />
          <Checkbox label={t('checks.followRedirects')} checked={f.followRedirects} onChange={(e) => set('followRedirects', e.target.checked)} />
          <Checkbox label={t('checks.verifyTls')} hint={t('checks.verifyTlsHint')} checked={f.verifyTls} onChange={(e) => set('verifyTls', e.target.checked)} />
        </fieldset>
      )}
      {f.kind === 'tcp' && (
        <fieldset className="check-kind">
          <legend>{t('checks.kinds.tcp')}</legend>
          <div className="form-grid">
            <TextField label={t('fields.spec.host')} value={f.host} onChange={(e) => set('host', e.target.value)} error={errors.host} placeholder="10.0.0.5" required />
            <TextField label={t('fields.spec.port')} type="number" min={1} max={65535} value={f.port} onChange={(e) => set('port', e.target.value)} error={errors.port} required />
          </div>
        </fieldset>
      )}
      {f.kind === 'dns' && (
        <fieldset className="check-kind">
          <legend>{t('checks.kinds.dns')}</legend>
          <div className="form-grid">
            <TextField label={t('fields.spec.name')} value={f.dnsName} onChange={(e) => set('dnsName', e.target.value)} error={errors.dnsName} placeholder={t('checks.namePlaceholder')} required />
            <SelectField label={t('fields.spec.record_type')} value={f.recordType} onChange={(e) => set('recordType', e.target.value as Schemas['DnsRecordType'])}>
              {RECORD_TYPES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </SelectField>
            <TextField label={t('fields.spec.resolver')} hint={t('checks.resolverHint')} value={f.resolver} onChange={(e) => set('resolver', e.target.value)} placeholder="192.0.2.53:53" />
            <TextField label={t('fields.spec.expected')} hint={t('checks.expectedHint')} value={f.expected} onChange={(e) => set('expected', e.target.value)} />
          </div>
        </fieldset>
      )}
      <Checkbox label={t('checks.enabled')} hint={t('checks.enabledHint')} checked={f.enabled} onChange={(e) => set('enabled', e.target.checked)} />
      <ErrorAlert error={error} />
    </Dialog>
  );
}
