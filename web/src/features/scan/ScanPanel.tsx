// The server page's discovery section: scan now, what the last scan found (system, disks,
// ports, services, failed units, containers), what it could not see, what changed since the
// scan before, earlier scans (each shown with what changed before it), and the next steps
// proposed for the databases found.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate } from 'react-router';
import { api, call, type Schemas, type Server } from '../../api/client';
import { useApi } from '../../api/useApi';
import { useAuth } from '../../auth/AuthContext';
import { Button, DataTable, ErrorAlert, Notice, formatTime, useAction } from '../../components/ui';
import { formatBytes as formatBytesIec } from '../../metrics/format';
import '../../styles/scan.css';

type Overview = Schemas['ScanOverview'];
type Proposal = Schemas['Proposal'];
type Report = Schemas['ScanReport'];

/** Bytes with binary prefixes (GiB, as the metrics show them); `—` when unknown. */
function formatBytes(n: number | null | undefined, locale: string): string {
  return n === null || n === undefined ? '—' : formatBytesIec(n, locale);
}

function endpoint(address: string, port: number) {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function SystemFacts({ report }: { report: Report }) {
  const { t, i18n } = useTranslation();
  const lang = i18n.language;
  const uptime = report.uptime_secs ?? null;
  const mem = report.memory;
  return (
    <dl className="facts">
      <dt>{t('scan.os')}</dt>
      <dd data-testid="scan-os">{report.os?.pretty_name ?? report.os?.name ?? '—'}</dd>
      <dt>{t('scan.kernel')}</dt>
      <dd className="mono">{report.kernel ?? '—'}</dd>
      <dt>{t('scan.architecture')}</dt>
      <dd className="mono">{report.architecture ?? '—'}</dd>
      <dt>{t('scan.hostname')}</dt>
      <dd className="mono">{report.hostname ?? '—'}</dd>
      <dt>{t('scan.cpu')}</dt>
      <dd>{report.cpu?.model ?? '—'}</dd>
      <dt>{t('scan.cores')}</dt>
      <dd>{report.cpu?.cores ?? '—'}</dd>
      <dt>{t('scan.memory')}</dt>
      <dd>
        {mem?.total_bytes != null
          ? t('scan.memoryValue', { total: formatBytes(mem.total_bytes, lang), available: formatBytes(mem.available_bytes, lang) })
          : '—'}
      </dd>
      <dt>{t('scan.swap')}</dt>
      <dd>{formatBytes(mem?.swap_total_bytes, lang)}</dd>
      <dt>{t('scan.uptime')}</dt>
      <dd>{uptime === null ? '—' : t('scan.uptimeValue', { days: Math.floor(uptime / 86400), hours: Math.floor((uptime % 86400) / 3600) })}</dd>
      <dt>{t('scan.account')}</dt>
      <dd className="mono">{report.user ?? '—'}</dd>
    </dl>
  );
}

export function Services({ report }: { report: Report }) {
  const { t } = useTranslation();
  const services = report.services ?? [];
  if (!services.length) return <p className="muted">{t('scan.noServices')}</p>;
  return (
    <ul className="scan-services" data-testid="scan-services">
      {services.map((s) => (
        <li key={`${s.kind}|${s.container ?? ''}`} className="scan-service">
          <span className={`scan-badge scan-badge-${s.kind}`} aria-hidden="true">
            {s.name.slice(0, 2)}
          </span>
          <span className="scan-service-name">{s.name}</span>{' '}
          <span className="mono">{s.version ?? t('scan.unknownVersion')}</span>
          {s.ports?.length ? <span className="muted"> · {t('scan.onPorts', { ports: s.ports.join(', ') })}</span> : null}
          {s.container && <span className="muted"> · {t('scan.inContainer', { container: s.container })}</span>}
          {!s.running && <span className="muted"> · {t('scan.installedOnly')}</span>}
        </li>
      ))}
    </ul>
  );
}

function Disks({ report }: { report: Report }) {
  const { t, i18n } = useTranslation();
  const disks = report.disks ?? [];
  if (!disks.length) return null;
  return (
    <>
      <h3>{t('scan.disks')}</h3>
      <DataTable caption={t('scan.disks')} headers={[t('scan.mount'), t('scan.fsType'), t('scan.size'), t('scan.used')]}>
        {disks.map((d) => {
          const ratio = d.size_bytes > 0 ? d.used_bytes / d.size_bytes : 0;
          const percent = Math.round(ratio * 100);
          return (
            <tr key={d.mount}>
              <td className="mono">{d.mount}</td>
              <td>{d.fs_type}</td>
              <td>{formatBytes(d.size_bytes, i18n.language)}</td>
              <td>
                <div className="scan-usage">
                  <meter min={0} max={1} low={0.75} high={0.9} optimum={0} value={ratio} aria-label={t('scan.diskUsage', { mount: d.mount, percent })} />
                  <span>
                    {formatBytes(d.used_bytes, i18n.language)} ({percent}%)
                  </span>
                </div>
              </td>
            </tr>
          );
        })}
      </DataTable>
    </>
  );
}

function Ports({ report }: { report: Report }) {
  const { t } = useTranslation();
  const ports = report.ports ?? [];
  return (
    <>
      <h3>{t('scan.ports')}</h3>
      {ports.length ? (
        <DataTable caption={t('scan.ports')} headers={[t('scan.port'), t('scan.address'), t('scan.process')]}>
          {ports.map((p) => (
            <tr key={endpoint(p.address, p.port)}>
              <td className="mono">{p.port}</td>
              <td className="mono">{p.address}</td>
              <td>{p.process ? `${p.process}${p.pid ? ` (${p.pid})` : ''}` : <span className="muted">{t('scan.processHidden')}</span>}</td>
            </tr>
          ))}
        </DataTable>
      ) : (
        <p className="muted">{t('scan.noPorts')}</p>
      )}
    </>
  );
}

function Changes({ overview }: { overview: Overview }) {
  const { t, i18n } = useTranslation();
  if (!overview.previous_at) return null;
  const time = formatTime(overview.previous_at, i18n.language);
  if (!overview.changes.length) return <p className="muted">{t('scan.noChanges', { time })}</p>;
  return (
    <div className="scan-changes" role="region" aria-label={t('scan.changesTitle', { time })}>
      <h3>{t('scan.changesTitle', { time })}</h3>
      <ul>
        {overview.changes.map((c, i) => (
          <li key={i} className={`scan-change scan-change-${c.kind}`}>
            {t(`scan.change.${c.kind}`, { subject: c.subject, before: c.before ?? '—', after: c.after ?? '' })}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Proposals({
  proposals,
  names,
  canWrite,
  canCheck,
  onChange,
}: {
  proposals: Proposal[];
  names: Map<string, string>;
  canWrite: boolean;
  /** May turn health-check proposals into checks (`checks.write`). */
  canCheck: boolean;
  onChange: () => Promise<void>;
}) {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const { busy, error, run } = useAction();
  const describe = (p: Proposal) => {
    const spec = (p.spec ?? {}) as { host?: string; port?: number | null; container?: string };
    const target = spec.host && spec.port ? endpoint(spec.host, spec.port) : spec.port ? String(spec.port) : '';
    const name = names.get(p.service) ?? p.service;
    const service = spec.container ? t('scan.serviceInContainer', { service: name, container: spec.container }) : name;
    return t(`scan.proposal.${p.kind}`, { service, target, defaultValue: `${p.kind} ${service}` });
  };
  return (
    <>
      <h3>{t('scan.proposals')}</h3>
      <ErrorAlert error={error} />
      {proposals.length ? (
        <ul className="scan-proposals" data-testid="scan-proposals">
          {proposals.map((p) => (
            <li key={p.id} className={p.status === 'dismissed' ? 'muted' : undefined}>
              <span>{describe(p)}</span>
              <span className="tag">{t(`scan.proposalStatus.${p.status}`, { defaultValue: p.status })}</span>
              {canCheck && p.kind === 'health_check' && p.status !== 'accepted' && (
                <Button
                  variant="primary"
                  busy={busy}
                  aria-label={t('scan.createCheckLabel', { what: describe(p) })}
                  onClick={() =>
                    run(async () => {
                      const check = await call(() => api.POST('/api/v1/proposals/{id}/accept', { params: { path: { id: p.id } } }));
                      navigate(`/checks/${check.id}`);
                    })
                  }
                >
                  {t('scan.createCheck')}
                </Button>
              )}
              {canWrite && p.status === 'proposed' && (
                <Button
                  busy={busy}
                  aria-label={t('scan.dismissLabel', { what: describe(p) })}
                  onClick={() =>
                    run(async () => {
                      await call(() => api.POST('/api/v1/proposals/{id}/dismiss', { params: { path: { id: p.id } } }));
                      await onChange();
                    })
                  }
                >
                  {t('scan.dismiss')}
                </Button>
              )}
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">{t('scan.noProposals')}</p>
      )}
    </>
  );
}

/** Earlier scans, loaded when opened; `onShow` displays one in the panel. */
function ScanHistory({ serverId, refresh, onShow }: { serverId: string; refresh: unknown; onShow: (id: string) => Promise<void> }) {
  const { t, i18n } = useTranslation();
  const [open, setOpen] = useState(false);
  const { busy, error, run } = useAction();
  // Reloaded when opened and after a new scan (`refresh` changes).
  const history = useApi(
    open && (() => call(() => api.GET('/api/v1/servers/{id}/scans', { params: { path: { id: serverId }, query: { limit: 50 } } }))),
    [open, serverId, refresh],
  );
  const items = history.data?.items;
  const total = history.data?.total ?? 0;
  const showBusy = busy || history.loading;
  return (
    <details className="scan-history" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{items ? t('scan.historyCount', { n: total }) : t('scan.history')}</summary>
      <ErrorAlert error={error ?? history.error} />
      {items && (
        <DataTable caption={t('scan.history')} headers={[t('scan.started'), t('scan.startedBy'), t('scan.status')]} actionsLabel={t('scan.show')}>
          {items.map((s) => {
            const time = formatTime(s.started_at, i18n.language);
            return (
              <tr key={s.id} data-testid="scan-history-row">
                <td>{time}</td>
                <td>{s.trigger === 'schedule' ? t('scan.scheduled') : t('scan.manual')}</td>
                <td>{t(`scan.outcome.${s.status}`, { defaultValue: s.status })}</td>
                <td>
                  <Button busy={showBusy} aria-label={t('scan.showLabel', { time })} onClick={() => run(() => onShow(s.id))}>
                    {t('scan.show')}
                  </Button>
                </td>
              </tr>
            );
          })}
        </DataTable>
      )}
    </details>
  );
}

export function ScanPanel({ server, onScanned }: { server: Server; onScanned?: () => void }) {
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const {
    data: loaded,
    setData,
    error: loadError,
    reload: load,
  } = useApi(async () => {
    const path = { params: { path: { id: server.id } } };
    const [overview, proposals] = await Promise.all([
      call(() => api.GET('/api/v1/servers/{id}/scan', path)),
      call(() => api.GET('/api/v1/servers/{id}/proposals', path)),
    ]);
    return { overview, proposals };
  }, [server.id]);
  const latestOverview = loaded?.overview ?? null;
  const proposals = loaded?.proposals ?? [];
  // An earlier scan picked from the history, shown instead of the latest.
  const [viewing, setViewing] = useState<Overview | null>(null);
  const overview = viewing ?? latestOverview;
  const { busy, error, run } = useAction();
  const canWrite = can('servers.write');

  const scanNow = () =>
    run(async () => {
      const scanned = await call(() => api.POST('/api/v1/servers/{id}/scan', { params: { path: { id: server.id } } }));
      setData((d) => ({ proposals: d?.proposals ?? [], overview: scanned }));
      setViewing(null);
      const fresh = await call(() => api.GET('/api/v1/servers/{id}/proposals', { params: { path: { id: server.id } } }));
      setData((d) => ({ overview: d?.overview ?? scanned, proposals: fresh }));
      onScanned?.();
    });

  const latest = overview?.latest;
  const report = overview?.current?.report;
  const reason = (e: Schemas['ScanError']) =>
    t(`scan.error.${e.code}`, { defaultValue: t(`servers.problem.${e.code}`, { defaultValue: e.message }) });

  return (
    <section className="card" aria-labelledby="scan-heading">
      <div className="scan-head">
        <h2 id="scan-heading">{t('scan.title')}</h2>
        {canWrite && (
          <Button variant="primary" busy={busy} onClick={scanNow}>
            {busy ? t('scan.scanning') : t('scan.scanNow')}
          </Button>
        )}
      </div>
      <ErrorAlert error={loadError ?? error} />
      {overview && !latest && <p className="muted">{t('scan.never')}</p>}
      {viewing && latest && (
        <Notice>
          {t('scan.viewing', { time: formatTime(latest.started_at, i18n.language) })}{' '}
          <Button onClick={() => setViewing(null)}>{t('scan.backToLatest')}</Button>
        </Notice>
      )}
      {!viewing && latest && (
        <p>
          {t('scan.lastScan')}: {formatTime(latest.finished_at ?? latest.started_at, i18n.language)}
          {latest.trigger === 'schedule' && <span className="muted"> ({t('scan.scheduled')})</span>}
        </p>
      )}
      {latest?.status === 'failed' && latest.error && (
        <Notice kind="warning">{t(viewing ? 'scan.failedThis' : 'scan.failed', { reason: reason(latest.error) })}</Notice>
      )}
      {latest?.status === 'running' && <Notice>{t('scan.running')}</Notice>}
      {overview && report && (
        <>
          {!viewing && latest?.id !== overview.current?.id && (
            <p className="muted">{t('scan.showingFrom', { time: formatTime(overview.current?.started_at, i18n.language) })}</p>
          )}
          <Changes overview={overview} />
          <SystemFacts report={report} />
          <h3>{t('scan.services')}</h3>
          <Services report={report} />
          <Ports report={report} />
          <Disks report={report} />
          {report.systemd && (
            <>
              <h3>{t('scan.failedUnits')}</h3>
              {report.systemd.failed?.length ? (
                <ul className="scan-units" data-testid="scan-failed-units">
                  {report.systemd.failed.map((u) => (
                    <li key={u} className="mono danger-text">
                      {u}
                    </li>
                  ))}
                </ul>
              ) : (
                <p className="muted">{t('scan.noFailedUnits')}</p>
              )}
              {report.systemd.running?.length ? (
                <details className="scan-running">
                  <summary>{t('scan.runningUnits', { n: report.systemd.running.length })}</summary>
                  <ul className="scan-units">
                    {report.systemd.running.map((u) => (
                      <li key={u} className="mono">
                        {u}
                      </li>
                    ))}
                  </ul>
                </details>
              ) : null}
            </>
          )}
          {report.docker?.containers?.length ? (
            <>
              <h3>{t('scan.containers')}</h3>
              <DataTable caption={t('scan.containers')} headers={[t('scan.containerName'), t('scan.image'), t('scan.status')]}>
                {report.docker.containers.map((c) => (
                  <tr key={c.name}>
                    <td className="mono">{c.name}</td>
                    <td className="mono">{c.image}</td>
                    <td>{c.status}</td>
                  </tr>
                ))}
              </DataTable>
            </>
          ) : null}
          {report.not_visible?.length ? (
            <>
              <h3>{t('scan.notVisibleTitle')}</h3>
              <ul className="scan-notes" data-testid="scan-not-visible">
                {report.not_visible.map((n, i) => (
                  <li key={i}>{t(`scan.notVisible.${n.code}`, { defaultValue: n.message })}</li>
                ))}
              </ul>
            </>
          ) : null}
        </>
      )}
      {latestOverview?.latest && (
        <ScanHistory
          serverId={server.id}
          refresh={latestOverview}
          onShow={async (id) => setViewing(await call(() => api.GET('/api/v1/servers/{id}/scans/{scan_id}', { params: { path: { id: server.id, scan_id: id } } })))}
        />
      )}
      {overview && (
        <Proposals
          proposals={proposals}
          names={new Map((report?.services ?? []).map((s) => [s.kind, s.name]))}
          canWrite={canWrite}
          canCheck={can('checks.write')}
          onChange={load}
        />
      )}
    </section>
  );
}
