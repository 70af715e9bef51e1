// The app frame: navigation, breadcrumbs, and the user menu around every signed-in page.
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, NavLink, Outlet, useLocation, useNavigate } from 'react-router';
import { useAuth } from '../auth/AuthContext';
import { LANGUAGES, setLanguage } from '../i18n';
import { api, call } from '../api/client';
import { applyTheme, currentTheme, type Theme } from '../theme';

interface NavItem {
  to: string;
  key: string;
  /** Shown to holders of this permission (or of any one of several). */
  permission?: string | string[];
}

const NAV: NavItem[] = [
  { to: '/', key: 'nav.dashboard' },
  { to: '/servers', key: 'nav.servers', permission: 'servers.read' },
  { to: '/checks', key: 'nav.checks', permission: 'servers.read' },
  { to: '/scripts', key: 'nav.scripts', permission: ['scripts.run', 'scripts.write'] },
  { to: '/runs', key: 'nav.runs', permission: ['scripts.run', 'audit.read'] },
  { to: '/users', key: 'nav.users', permission: 'users.manage' },
  { to: '/roles', key: 'nav.roles', permission: 'roles.manage' },
  { to: '/recordings', key: 'nav.recordings', permission: ['terminal.open', 'audit.read'] },
  { to: '/audit', key: 'nav.audit', permission: 'audit.read' },
  { to: '/settings', key: 'nav.settings', permission: 'settings.manage' },
];

export function Layout() {
  const { t } = useTranslation();
  const { me, can, logout } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const [navOpen, setNavOpen] = useState(false);
  const [theme, setTheme] = useState<Theme>(currentTheme());

  useEffect(() => {
    setNavOpen(false);
    setMenuOpen(false);
  }, [location.pathname]);

  const items = NAV.filter((n) => !n.permission || (Array.isArray(n.permission) ? n.permission : [n.permission]).some(can));
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        {t('nav.skip')}
      </a>
      <header className="topbar">
        <button
          type="button"
          className="icon-btn nav-toggle"
          aria-expanded={navOpen}
          aria-controls="sidenav"
          aria-label={t('nav.menu')}
          onClick={() => setNavOpen((o) => !o)}
        >
          ☰
        </button>
        <Link to="/" className="brand">
          <img src="/favicon.svg" alt="" width={24} height={24} />
          <span>Steward</span>
        </Link>
        <div className="topbar-spacer" />
        <div className="user-menu">
          <button
            type="button"
            className="btn btn-ghost"
            aria-haspopup="menu"
            aria-expanded={menuOpen}
            aria-controls="user-menu"
            onClick={() => setMenuOpen((o) => !o)}
          >
            {me?.username}
          </button>
          {menuOpen && (
            <div className="menu" id="user-menu" role="menu">
              <Link role="menuitem" to="/profile">
                {t('nav.profile')}
              </Link>
              <Link role="menuitem" to="/profile/security">
                {t('nav.security')}
              </Link>
              <Link role="menuitem" to="/profile/tokens">
                {t('nav.tokens')}
              </Link>
              <label className="menu-row">
                <span>{t('profile.language')}</span>
                <select
                  value={document.documentElement.lang}
                  onChange={async (e) => {
                    const code = e.target.value;
                    await setLanguage(code);
                    await call(() => api.PATCH('/api/v1/auth/me', { body: { locale: code } })).catch(() => undefined);
                    setMenuOpen(false);
                  }}
                >
                  {LANGUAGES.map((l) => (
                    <option key={l.code} value={l.code} lang={l.code}>
                      {l.name}
                    </option>
                  ))}
                </select>
              </label>
              <button
                type="button"
                role="menuitem"
                onClick={() => {
                  const next = theme === 'dark' ? 'light' : 'dark';
                  applyTheme(next, true);
                  setTheme(next);
                }}
              >
                {theme === 'dark' ? t('nav.lightTheme') : t('nav.darkTheme')}
              </button>
              <button
                type="button"
                role="menuitem"
                onClick={async () => {
                  await logout();
                  navigate('/login');
                }}
              >
                {t('nav.logout')}
              </button>
            </div>
          )}
        </div>
      </header>
      <nav id="sidenav" className={navOpen ? 'sidenav open' : 'sidenav'} aria-label={t('nav.main')}>
        <ul>
          {items.map((n) => (
            <li key={n.to}>
              <NavLink to={n.to} end={n.to === '/'}>
                {t(n.key)}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" className="content" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}

/** The page's place in the app, as links; the last item is the current page. */
export function Breadcrumbs({ items }: { items: { label: string; to?: string }[] }) {
  const { t } = useTranslation();
  return (
    <nav aria-label={t('nav.breadcrumbs')} className="breadcrumbs">
      <ol>
        <li>
          <Link to="/">{t('nav.dashboard')}</Link>
        </li>
        {items.map((item, i) => (
          <li key={i} aria-current={i === items.length - 1 ? 'page' : undefined}>
            {item.to && i !== items.length - 1 ? <Link to={item.to}>{item.label}</Link> : item.label}
          </li>
        ))}
      </ol>
    </nav>
  );
}

/** A page title with optional actions, and the document title kept in step. */
export function PageHeader({ title, actions }: { title: string; actions?: React.ReactNode }) {
  useEffect(() => {
    document.title = `${title} · Steward`;
  }, [title]);
  return (
    <div className="page-header">
      <h1>{title}</h1>
      {actions && <div className="page-actions">{actions}</div>}
    </div>
  );
}
