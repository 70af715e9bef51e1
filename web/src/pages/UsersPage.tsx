// User management: create, disable, reset password, assign roles, require or reset 2FA, end
// a user's sessions and revoke their API tokens.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call, type Role, type User } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { ConfirmDialog, Dialog } from '../components/Dialog';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, DataTable, Checkbox, ErrorAlert, Loading, Notice, TextField, formatTime, useAction } from '../components/ui';
import { SessionsPanel, UserTokensPanel } from '../features/sessions/SessionsPanel';

function RolePicker({ roles, selected, onChange }: { roles: Role[]; selected: string[]; onChange: (ids: string[]) => void }) {
  const { t } = useTranslation();
  return (
    <fieldset>
      <legend>{t('users.roles')}</legend>
      {roles.map((r) => (
        <Checkbox
          key={r.id}
          label={r.name}
          hint={r.description}
          checked={selected.includes(r.id)}
          onChange={(e) => onChange(e.target.checked ? [...selected, r.id] : selected.filter((x) => x !== r.id))}
        />
      ))}
    </fieldset>
  );
}

function UserDialog({ user, roles, onClose, onSaved }: { user?: User; roles: Role[]; onClose: () => void; onSaved: () => void }) {
  const { t } = useTranslation();
  const { busy, error, run } = useAction();
  const [username, setUsername] = useState(user?.username ?? '');
  const [email, setEmail] = useState(user?.email ?? '');
  const [password, setPassword] = useState('');
  const [roleIds, setRoleIds] = useState<string[]>(user?.roles.map((r) => r.id) ?? []);
  const [requireTotp, setRequireTotp] = useState(user?.require_totp ?? false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  return (
    <Dialog
      open
      title={user ? t('users.edit', { name: user.username }) : t('users.add')}
      onClose={onClose}
      onSubmit={async () => {
        const e: Record<string, string> = {};
        if (!user && !username.trim()) e.username = t('validation.required');
        if (!user && password.length < 10) e.password = t('validation.passwordLength');
        setErrors(e);
        if (Object.keys(e).length) return;
        await run(async () => {
          if (user) {
            await call(() =>
              api.PATCH('/api/v1/users/{id}', {
                params: { path: { id: user.id } },
                body: { email, roles: roleIds, require_totp: requireTotp },
              }),
            );
          } else {
            await call(() =>
              api.POST('/api/v1/users', {
                body: { username, password, email: email || null, roles: roleIds, require_totp: requireTotp },
              }),
            );
          }
          onSaved();
        });
      }}
      footer={
        <>
          <Button onClick={onClose}>{t('common.cancel')}</Button>
          <Button type="submit" variant="primary" busy={busy}>
            {t('common.save')}
          </Button>
        </>
      }
    >
      {!user && (
        <TextField label={t('fields.username')} value={username} onChange={(e) => setUsername(e.target.value)} error={errors.username} />
      )}
      <TextField label={t('fields.email')} type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
      {!user && (
        <TextField
          label={t('users.initialPassword')}
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errors.password}
          hint={t('users.initialPasswordHint')}
          autoComplete="new-password"
        />
      )}
      <RolePicker roles={roles} selected={roleIds} onChange={setRoleIds} />
      <Checkbox label={t('users.requireTotp')} checked={requireTotp} onChange={(e) => setRequireTotp(e.target.checked)} />
      <ErrorAlert error={error} />
    </Dialog>
  );
}

function ResetPasswordDialog({ user, onClose }: { user: User; onClose: () => void }) {
  const { t } = useTranslation();
  const { busy, error, run } = useAction();
  const [password, setPassword] = useState('');
  const [done, setDone] = useState(false);
  return (
    <Dialog
      open
      title={t('users.resetPassword', { name: user.username })}
      onClose={onClose}
      onSubmit={async () => {
        await run(async () => {
          await call(() =>
            api.POST('/api/v1/users/{id}/password', { params: { path: { id: user.id } }, body: { new_password: password } }),
          );
          setDone(true);
        });
      }}
      footer={
        done ? (
          <Button variant="primary" onClick={onClose}>
            {t('common.done')}
          </Button>
        ) : (
          <>
            <Button onClick={onClose}>{t('common.cancel')}</Button>
            <Button type="submit" variant="primary" busy={busy}>
              {t('users.setPassword')}
            </Button>
          </>
        )
      }
    >
      {done ? (
        <Notice kind="success">{t('users.passwordResetDone')}</Notice>
      ) : (
        <TextField
          label={t('fields.newPassword')}
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          hint={t('users.resetHint')}
          autoComplete="new-password"
        />
      )}
      <ErrorAlert error={error} />
    </Dialog>
  );
}

export function UsersPage() {
  const { t, i18n } = useTranslation();
  const { error, setError } = useAction();
  const { me } = useAuth();
  const [dialog, setDialog] = useState<{ kind: 'add' } | { kind: 'edit' | 'password' | 'delete' | 'totp' | 'access'; user: User } | null>(null);

  const {
    data: loaded,
    error: loadError,
    reload: load,
  } = useApi(async () => {
    const [users, roles] = await Promise.all([call(() => api.GET('/api/v1/users')), call(() => api.GET('/api/v1/roles'))]);
    return { users, roles };
  }, []);
  const users = loaded?.users ?? null;
  const roles = loaded?.roles ?? [];

  const close = () => setDialog(null);
  const saved = () => {
    setDialog(null);
    void load();
  };
  const toggleDisabled = async (u: User) => {
    setError(null);
    try {
      await call(() => api.PATCH('/api/v1/users/{id}', { params: { path: { id: u.id } }, body: { disabled: !u.disabled } }));
      await load();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.users') }]} />
      <PageHeader
        title={t('nav.users')}
        actions={
          <Button variant="primary" onClick={() => setDialog({ kind: 'add' })}>
            {t('users.add')}
          </Button>
        }
      />
      <ErrorAlert error={error ?? loadError} />
      {!users ? (
        <Loading />
      ) : (
        <DataTable caption={t('nav.users')} headers={[t('fields.username'), t('users.roles'), t('users.status'), t('users.twoFactor'), t('users.lastLogin')]} actionsLabel={t('common.actions')}>
              {users.map((u) => (
                <tr key={u.id} className={u.disabled ? 'muted' : undefined}>
                  <td>
                    {u.username}
                    {u.email && <div className="muted small">{u.email}</div>}
                  </td>
                  <td>{u.roles.map((r) => r.name).join(', ') || '—'}</td>
                  <td>{u.disabled ? t('users.disabled') : t('users.active')}</td>
                  <td>{u.totp_enabled ? t('users.totpOn') : u.require_totp ? t('users.totpRequired') : t('users.totpOff')}</td>
                  <td>{formatTime(u.last_login_at, i18n.language)}</td>
                  <td className="row-actions">
                    <Button variant="ghost" onClick={() => setDialog({ kind: 'edit', user: u })}>
                      {t('common.edit')}
                    </Button>
                    <Button variant="ghost" onClick={() => setDialog({ kind: 'password', user: u })}>
                      {t('users.resetPasswordShort')}
                    </Button>
                    <Button variant="ghost" onClick={() => setDialog({ kind: 'access', user: u })}>
                      {t('users.access')}
                    </Button>
                    {u.totp_enabled && (
                      <Button variant="ghost" onClick={() => setDialog({ kind: 'totp', user: u })}>
                        {t('users.reset2fa')}
                      </Button>
                    )}
                    {u.id !== me?.id && (
                      <>
                        <Button variant="ghost" onClick={() => void toggleDisabled(u)}>
                          {u.disabled ? t('users.enable') : t('users.disable')}
                        </Button>
                        <Button variant="ghost" className="danger-text" onClick={() => setDialog({ kind: 'delete', user: u })}>
                          {t('common.delete')}
                        </Button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
        </DataTable>
      )}
      {dialog?.kind === 'add' && <UserDialog roles={roles} onClose={close} onSaved={saved} />}
      {dialog?.kind === 'edit' && <UserDialog user={dialog.user} roles={roles} onClose={close} onSaved={saved} />}
      {dialog?.kind === 'password' && <ResetPasswordDialog user={dialog.user} onClose={close} />}
      {dialog?.kind === 'access' && (
        <Dialog open wide title={t('users.accessTitle', { name: dialog.user.username })} onClose={close}>
          <SessionsPanel user={dialog.user} />
          <UserTokensPanel user={dialog.user} />
        </Dialog>
      )}
      <ConfirmDialog
        open={dialog?.kind === 'delete'}
        title={t('users.deleteTitle')}
        message={dialog && 'user' in dialog ? t('users.deleteMessage', { name: dialog.user.username }) : ''}
        confirmLabel={t('common.delete')}
        onClose={close}
        onConfirm={async () => {
          if (dialog && 'user' in dialog) {
            await call(() => api.DELETE('/api/v1/users/{id}', { params: { path: { id: dialog.user.id } } }));
            await load();
          }
        }}
      />
      <ConfirmDialog
        open={dialog?.kind === 'totp'}
        title={t('users.reset2fa')}
        message={dialog && 'user' in dialog ? t('users.reset2faMessage', { name: dialog.user.username }) : ''}
        confirmLabel={t('users.reset2fa')}
        onClose={close}
        onConfirm={async () => {
          if (dialog && 'user' in dialog) {
            await call(() => api.DELETE('/api/v1/users/{id}/totp', { params: { path: { id: dialog.user.id } } }));
            await load();
          }
        }}
      />
    </>
  );
}
