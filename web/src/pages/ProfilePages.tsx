// The user's own account: profile and language, password, 2FA and sessions, personal API tokens.
import QRCode from 'qrcode';
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate } from 'react-router';
import { api, call, type Schemas } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { LANGUAGES, setLanguage } from '../i18n';
import { ConfirmDialog, Dialog } from '../components/Dialog';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { SessionsPanel, TokenTable } from '../features/sessions/SessionsPanel';
import { Button, Checkbox, CopyButton, ErrorAlert, Notice, SelectField, TextField, useAction } from '../components/ui';

export function ProfilePage() {
  const { t } = useTranslation();
  const { busy, error, run } = useAction();
  const { me, reload } = useAuth();
  const [email, setEmail] = useState(me?.email ?? '');
  const [locale, setLocale] = useState(me?.locale ?? document.documentElement.lang);
  const [saved, setSaved] = useState(false);
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.profile') }]} />
      <PageHeader title={t('nav.profile')} />
      <form
        className="card narrow"
        onSubmit={async (e) => {
          e.preventDefault();
          setSaved(false);
          await run(async () => {
            await call(() => api.PATCH('/api/v1/auth/me', { body: { email, locale } }));
            await setLanguage(locale);
            await reload();
            setSaved(true);
          });
        }}
      >
        <TextField label={t('fields.username')} value={me?.username ?? ''} readOnly />
        <TextField label={t('fields.email')} type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
        <SelectField label={t('profile.language')} value={locale} onChange={(e) => setLocale(e.target.value)}>
          {LANGUAGES.map((l) => (
            <option key={l.code} value={l.code} lang={l.code}>
              {l.name}
            </option>
          ))}
        </SelectField>
        <ErrorAlert error={error} />
        {saved && <Notice kind="success">{t('common.saved')}</Notice>}
        <Button type="submit" variant="primary" busy={busy}>
          {t('common.save')}
        </Button>
      </form>
    </>
  );
}

function ChangePassword() {
  const { t } = useTranslation();
  const { busy, error, run } = useAction();
  const { me, reload } = useAuth();
  const navigate = useNavigate();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [done, setDone] = useState(false);
  return (
    <form
      className="card narrow"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        const errs: Record<string, string> = {};
        if (next.length < 10) errs.next = t('validation.passwordLength');
        if (next !== confirm) errs.confirm = t('validation.passwordsDiffer');
        setErrors(errs);
        if (Object.keys(errs).length) return;
        await run(async () => {
          const wasRequired = me?.password_change_required;
          await call(() => api.POST('/api/v1/auth/password', { body: { current_password: current, new_password: next } }));
          setDone(true);
          setCurrent('');
          setNext('');
          setConfirm('');
          await reload();
          if (wasRequired) navigate('/');
        });
      }}
    >
      <h2>{t('security.changePassword')}</h2>
      {me?.password_change_required && <Notice kind="warning">{t('security.passwordChangeRequired')}</Notice>}
      <TextField label={t('fields.currentPassword')} type="password" value={current} onChange={(e) => setCurrent(e.target.value)} autoComplete="current-password" />
      <TextField
        label={t('fields.newPassword')}
        type="password"
        value={next}
        onChange={(e) => setNext(e.target.value)}
        error={errors.next}
        hint={t('validation.passwordHint')}
        autoComplete="new-password"
      />
      <TextField label={t('fields.confirmPassword')} type="password" value={confirm} onChange={(e) => setConfirm(e.target.value)} error={errors.confirm} autoComplete="new-password" />
      <ErrorAlert error={error} />
      {done && <Notice kind="success">{t('security.passwordChanged')}</Notice>}
      <Button type="submit" variant="primary" busy={busy}>
        {t('security.changePassword')}
      </Button>
    </form>
  );
}

function RecoveryCodesList({ codes }: { codes: string[] }) {
  const { t } = useTranslation();
  return (
    <div>
      <Notice kind="warning">{t('security.saveCodes')}</Notice>
      <ol className="recovery-codes" data-testid="recovery-codes">
        {codes.map((c) => (
          <li key={c} className="mono">
            {c}
          </li>
        ))}
      </ol>
      <CopyButton text={codes.join('\n')} label={t('security.copyCodes')} />
    </div>
  );
}

function TwoFactor() {
  const { t } = useTranslation();
  const { busy, error, setError, run } = useAction();
  const { me, reload } = useAuth();
  const navigate = useNavigate();
  const [enroll, setEnroll] = useState<Schemas['TotpEnrollResponse'] | null>(null);
  const [qr, setQr] = useState<string>('');
  const [code, setCode] = useState('');
  const [codes, setCodes] = useState<string[] | null>(null);
  const [password, setPassword] = useState('');
  const [dialog, setDialog] = useState<'disable' | 'regenerate' | null>(null);

  useEffect(() => {
    if (enroll) void QRCode.toDataURL(enroll.otpauth_url, { margin: 1, width: 200 }).then(setQr);
  }, [enroll]);

  const start = async () => {
    setError(null);
    try {
      setEnroll(await call(() => api.POST('/api/v1/auth/totp/enroll')));
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section className="card narrow">
      <h2>{t('security.twoFactor')}</h2>
      {me?.totp_setup_required && <Notice kind="warning">{t('security.totpRequired')}</Notice>}
      {codes ? (
        <>
          <Notice kind="success">{t('security.totpOn')}</Notice>
          <RecoveryCodesList codes={codes} />
          <Button
            variant="primary"
            onClick={async () => {
              setCodes(null);
              const wasRequired = me?.totp_setup_required;
              await reload();
              if (wasRequired) navigate('/');
            }}
          >
            {t('security.savedCodes')}
          </Button>
        </>
      ) : me?.totp_enabled ? (
        <>
          <p>{t('security.totpIsOn', { count: me.recovery_codes_left })}</p>
          <div className="actions">
            <Button onClick={() => setDialog('regenerate')}>{t('security.newCodes')}</Button>
            {!me.totp_required && (
              <Button variant="danger" onClick={() => setDialog('disable')}>
                {t('security.turnOff')}
              </Button>
            )}
          </div>
        </>
      ) : enroll ? (
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            await run(async () => {
              const r = await call(() => api.POST('/api/v1/auth/totp/confirm', { body: { code } }));
              setCodes(r.recovery_codes);
              setEnroll(null);
            });
          }}
        >
          <p>{t('security.scan')}</p>
          {qr && <img className="qr" src={qr} alt={t('security.qrAlt')} width={200} height={200} />}
          <p className="small">
            {t('security.manualEntry')} <code className="mono" data-testid="totp-secret">{enroll.secret}</code>
          </p>
          <TextField label={t('login.totpCode')} value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" autoComplete="one-time-code" />
          <Button type="submit" variant="primary" busy={busy}>
            {t('security.confirm')}
          </Button>
        </form>
      ) : (
        <>
          <p>{t('security.totpExplain')}</p>
          <Button variant="primary" onClick={() => void start()}>
            {t('security.setUp')}
          </Button>
        </>
      )}
      <ErrorAlert error={error} />
      <Dialog
        open={dialog !== null}
        title={dialog === 'disable' ? t('security.turnOff') : t('security.newCodes')}
        onClose={() => {
          setDialog(null);
          setPassword('');
        }}
        onSubmit={async () => {
          await run(async () => {
            if (dialog === 'disable') {
              await call(() => api.DELETE('/api/v1/auth/totp', { body: { password } }));
            } else {
              const r = await call(() => api.POST('/api/v1/auth/totp/recovery-codes', { body: { password } }));
              setCodes(r.recovery_codes);
            }
            setDialog(null);
            setPassword('');
            await reload();
          });
        }}
        footer={
          <Button type="submit" variant={dialog === 'disable' ? 'danger' : 'primary'} busy={busy}>
            {t('common.confirm')}
          </Button>
        }
      >
        <TextField label={t('fields.password')} type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" />
        <ErrorAlert error={error} />
      </Dialog>
    </section>
  );
}

export function SecurityPage() {
  const { t } = useTranslation();
  const { me } = useAuth();
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.profile'), to: '/profile' }, { label: t('nav.security') }]} />
      <PageHeader title={t('nav.security')} />
      {!me?.totp_setup_required && <ChangePassword />}
      {!me?.password_change_required && <TwoFactor />}
      {!me?.password_change_required && !me?.totp_setup_required && <SessionsPanel />}
    </>
  );
}

export function TokensPage() {
  const { t } = useTranslation();
  const { error, setError } = useAction();
  const { me } = useAuth();
  const { data: tokens = [], error: loadError, reload: load } = useApi(() => call(() => api.GET('/api/v1/api-tokens')), []);
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const [perms, setPerms] = useState<string[]>([]);
  const [days, setDays] = useState('90');
  const [created, setCreated] = useState<string | null>(null);
  const [revoke, setRevoke] = useState<Schemas['ApiToken'] | null>(null);
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.profile'), to: '/profile' }, { label: t('nav.tokens') }]} />
      <PageHeader
        title={t('nav.tokens')}
        actions={
          <Button variant="primary" onClick={() => setCreating(true)}>
            {t('tokens.create')}
          </Button>
        }
      />
      <p className="muted">{t('tokens.explain')}</p>
      <ErrorAlert error={error ?? loadError} />
      {created && (
        <Notice kind="success">
          {t('tokens.showOnce')}
          <span className="codeblock">
            <code data-testid="new-token">{created}</code>
            <CopyButton text={created} />
          </span>
        </Notice>
      )}
      {tokens.length === 0 ? (
        <p className="empty">{t('tokens.none')}</p>
      ) : (
        <TokenTable tokens={tokens} onRevoke={setRevoke} />
      )}
      <Dialog
        open={creating}
        title={t('tokens.create')}
        onClose={() => setCreating(false)}
        onSubmit={async () => {
          setError(null);
          try {
            const r = await call(() =>
              api.POST('/api/v1/api-tokens', {
                body: { name, permissions: perms, expires_in_days: days ? Number(days) : null },
              }),
            );
            setCreated(r.token);
            setCreating(false);
            setName('');
            setPerms([]);
            await load();
          } catch (e) {
            setError(e);
          }
        }}
        footer={
          <Button type="submit" variant="primary">
            {t('tokens.create')}
          </Button>
        }
      >
        <TextField label={t('fields.name')} value={name} onChange={(e) => setName(e.target.value)} />
        <fieldset>
          <legend>{t('roles.permissions')}</legend>
          {me?.permissions.map((p) => (
            <Checkbox
              key={p}
              label={t(`permissions.${p}`, { defaultValue: p })}
              hint={p}
              checked={perms.includes(p)}
              onChange={(e) => setPerms(e.target.checked ? [...perms, p] : perms.filter((x) => x !== p))}
            />
          ))}
        </fieldset>
        <TextField label={t('tokens.expiresInDays')} type="number" min={1} max={3650} value={days} onChange={(e) => setDays(e.target.value)} />
        <ErrorAlert error={error} />
      </Dialog>
      <ConfirmDialog
        open={revoke !== null}
        title={t('tokens.revoke')}
        message={t('tokens.revokeMessage', { name: revoke?.name })}
        confirmLabel={t('tokens.revoke')}
        onClose={() => setRevoke(null)}
        onConfirm={async () => {
          if (revoke) await call(() => api.DELETE('/api/v1/api-tokens/{id}', { params: { path: { id: revoke.id } } }));
          await load();
        }}
      />
    </>
  );
}
