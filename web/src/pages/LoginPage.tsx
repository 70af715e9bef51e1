// Login: password first, then the authenticator code (or a recovery code) when 2FA is on.
// After login the user returns to the page they were sent away from.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { ApiError, api, call } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { Button, ErrorAlert, TextField } from '../components/ui';

function safeNext(next: string | null): string {
  // Only paths inside the app: never an open redirect.
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function LoginPage() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const { me, reload, setupRequired } = useAuth();
  const navigate = useNavigate();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [step, setStep] = useState<'password' | 'totp'>('password');
  const [code, setCode] = useState('');
  const [useRecovery, setUseRecovery] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const next = safeNext(params.get('next'));

  if (setupRequired) return <Navigate to="/setup" replace />;
  if (me) return <Navigate to={next} replace />;

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const body =
        step === 'password'
          ? { username, password }
          : useRecovery
            ? { username, password, recovery_code: code }
            : { username, password, totp_code: code };
      await call(() => api.POST('/api/v1/auth/login', { body }), { auth: false });
      await reload();
      navigate(next, { replace: true });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'totp_required') {
        setStep('totp');
      } else {
        setError(e);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="auth-page">
      <form
        className="auth-card"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <h1>{t('login.title')}</h1>
        {params.get('expired') && <p className="muted">{t('login.expired')}</p>}
        {step === 'password' ? (
          <>
            <TextField
              label={t('fields.username')}
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              autoComplete="username"
              required
              autoFocus
            />
            <TextField
              label={t('fields.password')}
              type="password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="current-password"
              required
            />
          </>
        ) : (
          <>
            <p>{useRecovery ? t('login.recoveryPrompt') : t('login.totpPrompt')}</p>
            <TextField
              label={useRecovery ? t('login.recoveryCode') : t('login.totpCode')}
              value={code}
              onChange={(e) => setCode(e.target.value)}
              inputMode={useRecovery ? 'text' : 'numeric'}
              autoComplete="one-time-code"
              autoFocus
              required
            />
            <Button
              variant="ghost"
              onClick={() => {
                setUseRecovery((r) => !r);
                setCode('');
              }}
            >
              {useRecovery ? t('login.useTotp') : t('login.useRecovery')}
            </Button>
          </>
        )}
        <ErrorAlert error={error} />
        <Button type="submit" variant="primary" busy={busy} disabled={!username || !password}>
          {t('login.submit')}
        </Button>
      </form>
    </div>
  );
}
