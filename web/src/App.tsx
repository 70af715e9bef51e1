// Routes. Signed-in pages sit behind RequireAuth, which also holds users to what their account
// still needs (2FA set-up, a new password) before anything else.
import { Suspense, lazy, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { BrowserRouter, Link, Navigate, Outlet, Route, Routes, useLocation } from 'react-router';
import { AuthProvider, useAuth } from './auth/AuthContext';
import { Layout, PageHeader } from './components/Layout';
import { Loading } from './components/ui';
import { AuditPage } from './pages/AuditPage';
import { CheckDetailPage } from './pages/CheckDetailPage';
import { ChecksPage } from './pages/ChecksPage';
import { DashboardPage } from './pages/DashboardPage';
import { LoginPage } from './pages/LoginPage';
import { ProfilePage, SecurityPage, TokensPage } from './pages/ProfilePages';
import { RolesPage } from './pages/RolesPage';
import { RunPage } from './pages/RunPage';
import { RunsPage } from './pages/RunsPage';
import { ScriptEditorPage } from './pages/ScriptEditorPage';
import { ScriptsPage } from './pages/ScriptsPage';
import { ServerDetailPage } from './pages/ServerDetailPage';
import { ServersPage } from './pages/ServersPage';
import { SettingsPage } from './pages/SettingsPage';
import { SetupPage } from './pages/SetupPage';
import { UsersPage } from './pages/UsersPage';

// The terminal and the recordings carry xterm.js: loaded when first visited.
const TerminalPage = lazy(() => import('./pages/TerminalPage').then((m) => ({ default: m.TerminalPage })));
const RecordingsPage = lazy(() => import('./pages/RecordingsPage').then((m) => ({ default: m.RecordingsPage })));
const RecordingPlayerPage = lazy(() => import('./pages/RecordingsPage').then((m) => ({ default: m.RecordingPlayerPage })));
const lazyPage = (page: ReactNode) => <Suspense fallback={<Loading />}>{page}</Suspense>;

function RequireAuth() {
  const { me, loading, setupRequired, sessionEnded } = useAuth();
  const location = useLocation();
  if (loading) return <Loading />;
  if (setupRequired) return <Navigate to="/setup" replace />;
  const here = location.pathname + location.search;
  if (!me) return <Navigate to={`/login?${sessionEnded ? 'expired=1&' : ''}next=${encodeURIComponent(here)}`} replace />;
  const pending = me.totp_setup_required || me.password_change_required;
  if (pending && location.pathname !== '/profile/security') return <Navigate to="/profile/security" replace />;
  return <Outlet />;
}

/** Shows the nested pages to holders of the permission (or of any one of several). */
function RequirePermission({ permission }: { permission: string | string[] }) {
  const { can } = useAuth();
  const any = Array.isArray(permission) ? permission : [permission];
  return any.some(can) ? <Outlet /> : <Forbidden />;
}

function Forbidden() {
  const { t } = useTranslation();
  return (
    <>
      <PageHeader title={t('common.forbidden')} />
      <p>{t('common.forbiddenText')}</p>
      <Link to="/">{t('nav.dashboard')}</Link>
    </>
  );
}

function NotFound() {
  const { t } = useTranslation();
  return (
    <>
      <PageHeader title={t('common.notFound')} />
      <Link to="/">{t('nav.dashboard')}</Link>
    </>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <AuthProvider>
        <Routes>
          <Route path="/setup" element={<SetupPage />} />
          <Route path="/login" element={<LoginPage />} />
          <Route element={<RequireAuth />}>
            <Route element={<Layout />}>
              <Route index element={<DashboardPage />} />
              <Route element={<RequirePermission permission="servers.read" />}>
                <Route path="servers" element={<ServersPage />} />
                <Route path="servers/:id" element={<ServerDetailPage />} />
                <Route path="servers/:id/terminal" element={lazyPage(<TerminalPage />)} />
                <Route path="checks" element={<ChecksPage />} />
                <Route path="checks/:id" element={<CheckDetailPage />} />
              </Route>
              <Route element={<RequirePermission permission={['scripts.run', 'scripts.write']} />}>
                <Route path="scripts" element={<ScriptsPage />} />
                <Route path="scripts/:id" element={<ScriptEditorPage />} />
              </Route>
              <Route element={<RequirePermission permission={['scripts.run', 'audit.read']} />}>
                <Route path="runs" element={<RunsPage />} />
                <Route path="runs/:id" element={<RunPage />} />
              </Route>
              <Route element={<RequirePermission permission="users.manage" />}>
                <Route path="users" element={<UsersPage />} />
              </Route>
              <Route element={<RequirePermission permission="roles.manage" />}>
                <Route path="roles" element={<RolesPage />} />
              </Route>
              <Route element={<RequirePermission permission="audit.read" />}>
                <Route path="audit" element={<AuditPage />} />
              </Route>
              <Route element={<RequirePermission permission="settings.manage" />}>
                <Route path="settings" element={<SettingsPage />} />
              </Route>
              <Route path="recordings" element={lazyPage(<RecordingsPage />)} />
              <Route path="recordings/:id" element={lazyPage(<RecordingPlayerPage />)} />
              <Route path="profile" element={<ProfilePage />} />
              <Route path="profile/security" element={<SecurityPage />} />
              <Route path="profile/tokens" element={<TokensPage />} />
              <Route path="*" element={<NotFound />} />
            </Route>
          </Route>
        </Routes>
      </AuthProvider>
    </BrowserRouter>
  );
}
