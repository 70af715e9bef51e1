// Who is logged in, and what they may do. Loaded from /auth/me; the session itself is in
// HttpOnly cookies the UI never reads.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { SESSION_ENDED, api, call, type Me } from '../api/client';
import { setLanguage } from '../i18n';

interface AuthState {
  me: Me | null;
  loading: boolean;
  /** The last session ended on its own (expired or revoked), rather than by logging out. */
  sessionEnded: boolean;
  setupRequired: boolean;
  /** Reloads the account (after login, profile changes, 2FA changes). */
  reload: () => Promise<Me | null>;
  logout: () => Promise<void>;
  /** Whether the user holds a permission (server-scoped ones: on at least some servers). */
  can: (permission: string) => boolean;
  /** Whether the user holds a permission on a server carrying these tags (as the server decides). */
  canOn: (permission: string, serverTags: readonly string[]) => boolean;
}

/** Where a permission applies: `null` on every server, else these tags; `undefined` nowhere. */
export type PermissionScope = string[] | null | undefined;

/** Where the account holds `permission` (absent from `scopes`: not server-scoped, so everywhere). */
export function scopeOf(me: Me | null, permission: string): PermissionScope {
  if (!me || !me.permissions.includes(permission)) return undefined;
  const s = me.scopes?.[permission];
  return s == null ? null : [...s];
}

/** The decision `canOn` makes, from /auth/me's permissions and their tag scopes. */
export function holdsOn(me: Me | null, permission: string, serverTags: readonly string[]): boolean {
  const scope = scopeOf(me, permission);
  if (scope === undefined) return false;
  return scope === null || serverTags.some((t) => scope.includes(t));
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);
  const [setupRequired, setSetupRequired] = useState(false);
  const [sessionEnded, setSessionEnded] = useState(false);

  const reload = useCallback(async () => {
    try {
      const next = await call(() => api.GET('/api/v1/auth/me'));
      setMe(next);
      setSessionEnded(false);
      if (next.locale) await setLanguage(next.locale);
      return next;
    } catch {
      setMe(null);
      return null;
    }
  }, []);

  useEffect(() => {
    void (async () => {
      try {
        const status = await call(() => api.GET('/api/v1/setup'), { auth: false });
        setSetupRequired(status.setup_required);
        if (!status.setup_required) await reload();
      } finally {
        setLoading(false);
      }
    })();
  }, [reload]);

  // A session that ended (expired, revoked) forgets the account at once, so no page goes on
  // acting as the old user while the app moves to the login page.
  useEffect(() => {
    const ended = () => {
      setMe((current) => {
        if (current) setSessionEnded(true);
        return null;
      });
    };
    window.addEventListener(SESSION_ENDED, ended);
    return () => window.removeEventListener(SESSION_ENDED, ended);
  }, []);

  const logout = useCallback(async () => {
    await call(() => api.POST('/api/v1/auth/logout'), { auth: false }).catch(() => undefined);
    setMe(null);
  }, []);

  const value = useMemo<AuthState>(
    () => ({
      me,
      loading,
      sessionEnded,
      setupRequired,
      reload: async () => {
        setSetupRequired(false);
        return reload();
      },
      logout,
      can: (p) => me?.permissions.includes(p) ?? false,
      canOn: (p, tags) => holdsOn(me, p, tags),
    }),
    [me, loading, sessionEnded, setupRequired, reload, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error('useAuth outside AuthProvider');
  return ctx;
}
