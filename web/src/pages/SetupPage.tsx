// First run: the holder of the setup token creates the first administrator.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { api, call } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { Button, ErrorAlert, TextField, useAction } from '../components/ui';

export function SetupPage() {
  const { t } = useTranslation();
  const { busy, error, run } = useAction();
  const [params] = useSearchParams();
  const { setupRequired, loading, reload } = useAuth();
  const navigate = useNavigate();
  const [token, setToken] = useState(params.get('token') ?? '');
  const [username, setUsername] = useState('admin');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});

  if (!loading && !setupRequired) return <Navigate to="/login" replace />;

  const validate = () => {
    const e: Record<string, string> = {};
    if (!token.trim()) e.token = t('validation.required');
    if (!username.trim()) e.username = t('validation.required');
    if (password.length < 10) e.password = t('validation.passwordLength');
    if (confirm !== password) e.confirm = t('validation.passwordsDiffer');
    setErrors(e);
    return Object.keys(e).length === 0;
  };

  return (
    <div className="auth-page">
      <form
        className="auth-card"
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          if (!validate()) return;
          await run(async () => {
            await call(
              () => api.POST('/api/v1/setup', { body: { token: token.trim(), username, password, email: email || null } }),
              { auth: false },
            );
            await call(() => api.POST('/api/v1/auth/login', { body: { username, password } }), { auth: false });
            await reload();
            navigate('/', { replace: true });
          });
        }}
      >
        <h1>{t('setup.title')}</h1>
        <p>{t('setup.intro')}</p>
        <TextField
          label={t('setup.token')}
          hint={t('setup.tokenHint')}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          error={errors.token}
          autoComplete="off"
          spellCheck={false}
        />
        <TextField
          label={t('fields.username')}
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          error={errors.username}
          autoComplete="username"
        />
        <TextField
          label={t('fields.email')}
          type="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          autoComplete="email"
        />
        <TextField
          label={t('fields.password')}
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errors.password}
          hint={t('validation.passwordHint')}
          autoComplete="new-password"
        />
        <TextField
          label={t('fields.confirmPassword')}
          type="password"
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={errors.confirm}
          autoComplete="new-password"
        />
        <ErrorAlert error={error} />
        <Button type="submit" variant="primary" busy={busy}>
          {t('setup.submit')}
        </Button>
      </form>
    </div>
  );
}
