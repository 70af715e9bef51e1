// Where an account is signed in, and its API tokens as an administrator sees them: the
// user's own sessions (Profile › Security) and, for user managers, another user's sessions
// and tokens (Users › Sessions and tokens). The server decides who may see and end what.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call, type Schemas } from '../../api/client';
import { useApi } from '../../api/useApi';
import { ConfirmDialog } from '../../components/Dialog';
import { Button, DataTable, ErrorAlert, Loading, formatTime } from '../../components/ui';

type Session = Schemas['SessionInfo'];
type Token = Schemas['ApiToken'];

/** Live sessions: the caller's own (no `user`), or those of `user` (an administrator's view). */
export function SessionsPanel({ user }: { user?: { id: string; username: string } }) {
  const { t, i18n } = useTranslation();
  const [ending, setEnding] = useState<Session | 'all' | null>(null);
  const {
    data: sessions,
    error,
    reload: load,
  } = useApi(
    () =>
      user
        ? call(() => api.GET('/api/v1/users/{id}/sessions', { params: { path: { id: user.id } } }))
        : call(() => api.GET('/api/v1/auth/sessions')),
    [user?.id],
  );

  const endOne = async (s: Session) => {
    if (user) await call(() => api.DELETE('/api/v1/users/{id}/sessions/{session_id}', { params: { path: { id: user.id, session_id: s.id } } }));
    else await call(() => api.DELETE('/api/v1/auth/sessions/{id}', { params: { path: { id: s.id } } }));
  };
  const endAll = async () => {
    if (user) await call(() => api.POST('/api/v1/users/{id}/sessions/revoke-all', { params: { path: { id: user.id } } }));
    else await call(() => api.POST('/api/v1/auth/sessions/revoke-others'));
  };
  const others = (sessions ?? []).filter((s) => !s.current);

  return (
    <section className="card" data-testid="sessions">
      <h2>{t('sessions.title')}</h2>
      <p className="muted">{user ? t('sessions.explainUser', { name: user.username }) : t('sessions.explain')}</p>
      <ErrorAlert error={error} />
      {!sessions ? (
        <Loading />
      ) : sessions.length === 0 ? (
        <p className="empty">{t('sessions.none')}</p>
      ) : (
        <DataTable caption={t('sessions.title')} headers={[t('sessions.device'), t('sessions.address'), t('sessions.signedIn'), t('sessions.lastSeen')]} actionsLabel={t('common.actions')}>
          {sessions.map((s) => (
            <tr key={s.id} data-testid="session-row">
              <td>
                <span className="small">{s.user_agent || t('sessions.unknownDevice')}</span>
                {s.current && <span className="badge">{t('sessions.current')}</span>}
              </td>
              <td className="mono small">{s.source_ip ?? '—'}</td>
              <td>{formatTime(s.created_at, i18n.language)}</td>
              <td>{formatTime(s.last_seen_at, i18n.language)}</td>
              <td className="row-actions">
                {!s.current && (
                  <Button variant="ghost" className="danger-text" onClick={() => setEnding(s)}>
                    {t('sessions.end')}
                  </Button>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      {(user ? sessions && sessions.length > 0 : others.length > 0) && (
        <div className="actions">
          <Button variant="danger" onClick={() => setEnding('all')}>
            {user ? t('sessions.endAll') : t('sessions.endOthers')}
          </Button>
        </div>
      )}
      <ConfirmDialog
        open={ending !== null}
        title={ending === 'all' ? (user ? t('sessions.endAll') : t('sessions.endOthers')) : t('sessions.endTitle')}
        message={
          ending === 'all'
            ? user
              ? t('sessions.endAllMessage', { name: user.username })
              : t('sessions.endOthersMessage')
            : t('sessions.endMessage', { device: ending?.user_agent || t('sessions.unknownDevice'), address: ending?.source_ip ?? '—' })
        }
        confirmLabel={t('sessions.end')}
        onClose={() => setEnding(null)}
        onConfirm={async () => {
          if (ending === 'all') await endAll();
          else if (ending) await endOne(ending);
          await load();
        }}
      />
    </section>
  );
}

/** Another user's API tokens, for a user manager to revoke. */
export function UserTokensPanel({ user }: { user: { id: string; username: string } }) {
  const { t } = useTranslation();
  const [revoke, setRevoke] = useState<Token | null>(null);
  const {
    data: tokens,
    error,
    reload: load,
  } = useApi(() => call(() => api.GET('/api/v1/users/{id}/api-tokens', { params: { path: { id: user.id } } })), [user.id]);
  return (
    <section className="card" data-testid="user-tokens">
      <h2>{t('nav.tokens')}</h2>
      <ErrorAlert error={error} />
      {!tokens ? (
        <Loading />
      ) : tokens.length === 0 ? (
        <p className="empty">{t('users.noTokens')}</p>
      ) : (
        <TokenTable tokens={tokens} onRevoke={setRevoke} />
      )}
      <ConfirmDialog
        open={revoke !== null}
        title={t('tokens.revoke')}
        message={t('tokens.revokeMessage', { name: revoke?.name })}
        confirmLabel={t('tokens.revoke')}
        onClose={() => setRevoke(null)}
        onConfirm={async () => {
          if (revoke) await call(() => api.DELETE('/api/v1/users/{id}/api-tokens/{token_id}', { params: { path: { id: user.id, token_id: revoke.id } } }));
          await load();
        }}
      />
    </section>
  );
}

/** API tokens with their permissions, expiry and last use, each with Revoke while it is valid. */
export function TokenTable({ tokens, onRevoke }: { tokens: Token[]; onRevoke: (token: Token) => void }) {
  const { t, i18n } = useTranslation();
  return (
    <DataTable caption={t('nav.tokens')} headers={[t('fields.name'), t('roles.permissions'), t('tokens.expires'), t('tokens.lastUsed')]} actionsLabel={t('common.actions')}>
      {tokens.map((tk) => (
        <tr key={tk.id} className={tk.revoked ? 'muted' : undefined}>
          <td>
            {tk.name} <span className="mono small">{tk.prefix}…</span>
          </td>
          <td className="small">{tk.permissions.join(', ')}</td>
          <td>{tk.revoked ? t('tokens.revoked') : tk.expires_at ? formatTime(tk.expires_at, i18n.language) : t('tokens.never')}</td>
          <td>{formatTime(tk.last_used_at, i18n.language)}</td>
          <td className="row-actions">
            {!tk.revoked && (
              <Button variant="ghost" className="danger-text" onClick={() => onRevoke(tk)}>
                {t('tokens.revoke')}
              </Button>
            )}
          </td>
        </tr>
      ))}
    </DataTable>
  );
}
