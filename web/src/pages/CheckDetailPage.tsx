// One health check: its definition, last run, uptime, the history chart and the recent
// problems; run now, edit, delete.
import { Suspense, lazy, useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate, useParams } from 'react-router';
import { api, call } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { ConfirmDialog } from '../components/Dialog';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, DataTable, ErrorAlert, Loading, SelectField, formatTime, useAction } from '../components/ui';
import { CheckFormDialog } from '../features/checks/CheckForm';
import { REFRESH_MS, StatusBadge, checkTarget, formatMs, formatPercent, formatUnit } from '../features/checks/checkDisplay';
import '../styles/checks.css';

// uPlot is only needed here: loaded with the first chart.
const CheckChart = lazy(() => import('../features/checks/CheckChart'));

const WINDOWS = [1, 24, 168, 720] as const;

export function CheckDetailPage() {
  const { id = '' } = useParams();
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const navigate = useNavigate();
  const [hours, setHours] = useState<number>(24);
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const { busy, error: runError, run } = useAction();
  const lang = i18n.language;
  const canWrite = can('checks.write');

  const {
    data,
    setData,
    error,
    reload: load,
  } = useApi(async () => {
    const path = { params: { path: { id } } };
    const [check, results] = await Promise.all([
      call(() => api.GET('/api/v1/checks/{id}', path)),
      call(() => api.GET('/api/v1/checks/{id}/results', { params: { path: { id }, query: { hours } } })),
    ]);
    return { check, results };
  }, [id, hours]);
  const check = data?.check ?? null;
  const results = data?.results ?? null;

  // A check that has not run yet runs within seconds: look again soon.
  const pending = !!check && !check.last && check.enabled;
  useEffect(() => {
    const every = setInterval(() => void load(), pending ? 2_000 : REFRESH_MS);
    return () => clearInterval(every);
  }, [load, pending]);

  if (!check) return error ? <ErrorAlert error={error} /> : <Loading />;

  const last = check.last;
  const problems = (results?.items ?? []).filter((p) => p.status !== 'up').slice(-20).reverse();
  const windowLabel = (h: number) => t('checks.lastWindow', { window: h < 48 ? formatUnit(h, 'hour', lang) : formatUnit(h / 24, 'day', lang) });
  const every = t('checks.every', {
    interval: check.interval_secs % 60 === 0 ? formatUnit(check.interval_secs / 60, 'minute', lang) : formatUnit(check.interval_secs, 'second', lang),
  });

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.checks'), to: '/checks' }, { label: check.name }]} />
      <PageHeader
        title={check.name}
        actions={
          canWrite && (
            <>
              <Button
                variant="primary"
                busy={busy}
                onClick={() =>
                  run(async () => {
                    const ran = await call(() => api.POST('/api/v1/checks/{id}/run', { params: { path: { id } } }));
                    setData((d) => d && { ...d, check: ran });
                    const fresh = await call(() => api.GET('/api/v1/checks/{id}/results', { params: { path: { id }, query: { hours } } }));
                    setData((d) => d && { ...d, results: fresh });
                  })
                }
              >
                {busy ? t('checks.running') : t('checks.runNow')}
              </Button>
              <Button onClick={() => setEditing(true)}>{t('common.edit')}</Button>
              <Button variant="danger" onClick={() => setDeleting(true)}>
                {t('common.delete')}
              </Button>
            </>
          )
        }
      />
      <ErrorAlert error={error ?? runError} />
      <section className="card" aria-labelledby="check-now">
        <h2 id="check-now" className="visually-hidden">
          {t('checks.lastRun')}
        </h2>
        <dl className="facts">
          <dt>{t('checks.statusFilter')}</dt>
          <dd>
            <StatusBadge check={check} />
          </dd>
          <dt>{t('checks.message')}</dt>
          <dd data-testid="check-message">{last?.message || '—'}</dd>
          <dt>{t('checks.target')}</dt>
          <dd className="mono">{checkTarget(check.spec)}</dd>
          <dt>{t('checks.server')}</dt>
          <dd>{check.server_id ? <Link to={`/servers/${check.server_id}`}>{check.server_name ?? check.server_id}</Link> : t('checks.standalone')}</dd>
          <dt>{t('checks.schedule')}</dt>
          <dd>
            {every} · {t('checks.timeoutValue', { timeout: formatUnit(check.timeout_secs, 'second', lang) })}
          </dd>
          <dt>{t('checks.lastRun')}</dt>
          <dd>{formatTime(last?.at, lang)}</dd>
          <dt>{t('checks.responseTime')}</dt>
          <dd data-testid="check-latency">{formatMs(last?.latency_ms, lang)}</dd>
          {last?.http_status != null && (
            <>
              <dt>{t('checks.httpStatus')}</dt>
              <dd>{last.http_status}</dd>
            </>
          )}
          {last?.cert_days_left != null && (
            <>
              <dt>{t('checks.certificate')}</dt>
              <dd data-testid="check-cert">
                {last.cert_days_left < 0
                  ? t('checks.certExpired', { days: formatUnit(-last.cert_days_left, 'day', lang) })
                  : t('checks.certDaysLeft', { days: formatUnit(last.cert_days_left, 'day', lang) })}
              </dd>
            </>
          )}
        </dl>
        <ul className="check-uptime" aria-label={t('checks.uptime')}>
          <li>
            <span className="muted">{t('checks.uptime24h')}</span> <strong data-testid="uptime-24h">{formatPercent(check.uptime.h24, lang)}</strong>
          </li>
          <li>
            <span className="muted">{t('checks.uptime7d')}</span> <strong>{formatPercent(check.uptime.d7, lang)}</strong>
          </li>
          <li>
            <span className="muted">{t('checks.uptime30d')}</span> <strong>{formatPercent(check.uptime.d30, lang)}</strong>
          </li>
        </ul>
      </section>
      <section className="card" aria-labelledby="check-history">
        <div className="check-history-head">
          <h2 id="check-history">{t('checks.history')}</h2>
          <SelectField label={t('checks.window')} value={String(hours)} onChange={(e) => setHours(Number(e.target.value))}>
            {WINDOWS.map((h) => (
              <option key={h} value={h}>
                {windowLabel(h)}
              </option>
            ))}
          </SelectField>
        </div>
        {!results ? (
          <Loading />
        ) : results.items.length === 0 ? (
          <p className="empty">{t('checks.noResults')}</p>
        ) : (
          <Suspense fallback={<Loading />}>
            <CheckChart points={results.items} label={t('checks.chartLabel', { name: check.name, window: windowLabel(hours) })} />
          </Suspense>
        )}
        {results?.truncated && <p className="muted small">{t('checks.truncated')}</p>}
        <h3>{t('checks.problems')}</h3>
        {problems.length === 0 ? (
          <p className="muted">{t('checks.noProblems')}</p>
        ) : (
          <DataTable caption={t('checks.problems')} headers={[t('checks.when'), t('checks.statusFilter'), t('checks.message')]}>
            {problems.map((p) => (
              <tr key={p.at}>
                <td className="nowrap">{formatTime(p.at, lang)}</td>
                <td>
                  <span className={`status check-status-${p.status}`}>{t(`checks.status.${p.status}`)}</span>
                </td>
                <td>{p.message}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </section>
      {editing && (
        <CheckFormDialog
          open
          check={check}
          onClose={() => setEditing(false)}
          onSaved={(c) => {
            setEditing(false);
            setData((d) => d && { ...d, check: c });
          }}
        />
      )}
      <ConfirmDialog
        open={deleting}
        title={t('checks.deleteTitle', { name: check.name })}
        message={t('checks.deleteText')}
        confirmLabel={t('common.delete')}
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          await call(() => api.DELETE('/api/v1/checks/{id}', { params: { path: { id } } }));
          navigate('/checks');
        }}
      />
    </>
  );
}
