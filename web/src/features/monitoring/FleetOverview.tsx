// The fleet at a glance on the dashboard: every visible server's status, CPU, memory, disk,
// network and a CPU sparkline, live over `/api/v1/live` (polling the summary while the socket
// is down). Cards or a compact table; filter by tag and status; sort by any metric.
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { api, call } from '../../api/client';
import { useApi } from '../../api/useApi';
import { Button, DataTable, ErrorAlert, Loading, SelectField } from '../../components/ui';
import { formatBytes, formatValue } from '../../metrics/format';
import { useLive, type HostStatus, type ServerMetrics } from '../../metrics/live';
import { Sparkline } from '../../metrics/Sparkline';
import '../../styles/metrics.css';

const STATUSES: HostStatus[] = ['online', 'degraded', 'offline', 'unknown'];
const SORTS = ['name', 'status', 'cpu', 'memory', 'disk', 'network', 'load'] as const;
type SortKey = (typeof SORTS)[number];
const STATUS_ORDER: Record<HostStatus, number> = { offline: 0, degraded: 1, unknown: 2, online: 3 };

function sortValue(s: ServerMetrics, key: SortKey): number | string {
  switch (key) {
    case 'name':
      return s.name.toLowerCase();
    case 'status':
      return STATUS_ORDER[s.status];
    case 'cpu':
      return s.cpu_pct ?? -1;
    case 'memory':
      return s.mem_used_pct ?? -1;
    case 'disk':
      return s.disk_used_pct ?? -1;
    case 'network':
      return (s.net_rx_bps ?? 0) + (s.net_tx_bps ?? 0);
    case 'load':
      return s.load1 ?? -1;
  }
}

export function StatusBadge({ status }: { status: HostStatus }) {
  const { t } = useTranslation();
  return <span className={`status host-status-${status}`}>{t(`metrics.status.${status}`)}</span>;
}

function useFormat() {
  const { i18n } = useTranslation();
  return {
    pct: (v: number | null | undefined) => formatValue(v, 'percent', i18n.language),
    rate: (v: number | null | undefined) => formatValue(v, 'bytes_per_s', i18n.language),
    load: (v: number | null | undefined) => formatValue(v, 'load', i18n.language),
  };
}

function ServerCard({ s }: { s: ServerMetrics }) {
  const { t } = useTranslation();
  const f = useFormat();
  const spark = s.sparkline ?? [];
  return (
    <li className="card fleet-card" data-testid="fleet-card" data-server={s.id} data-sample={s.last_sample_at ?? ''}>
      <div className="fleet-card-head">
        <Link to={`/servers/${s.id}`} className="fleet-name">
          {s.name}
        </Link>
        <StatusBadge status={s.status} />
      </div>
      <dl className="fleet-values">
        <dt>{t('metrics.cpu')}</dt>
        <dd data-testid="cpu">{f.pct(s.cpu_pct)}</dd>
        <dt>{t('metrics.memory')}</dt>
        <dd>{f.pct(s.mem_used_pct)}</dd>
        <dt>{t('metrics.disk')}</dt>
        <dd title={s.disk_mount ?? undefined}>{f.pct(s.disk_used_pct)}</dd>
        <dt>{t('metrics.network')}</dt>
        <dd>{t('metrics.rxTx', { rx: f.rate(s.net_rx_bps), tx: f.rate(s.net_tx_bps) })}</dd>
        <dt>{t('metrics.load')}</dt>
        <dd>{f.load(s.load1)}</dd>
      </dl>
      <Sparkline values={spark} label={t('metrics.sparkline', { count: spark.length })} />
      {s.tags.length > 0 && (
        <p className="fleet-tags">
          {s.tags.map((tg) => (
            <span key={tg} className="tag">
              {tg}
            </span>
          ))}
        </p>
      )}
    </li>
  );
}

export function FleetOverview() {
  const { t, i18n } = useTranslation();
  const f = useFormat();
  const { data: usage } = useApi(() => call(() => api.GET('/api/v1/metrics/disk-usage')).catch(() => null), []);
  const { servers, live, loaded, error } = useLive({ fleet: true }, 'fleet');
  const [view, setView] = useState<'cards' | 'table'>(() => (localStorage.getItem('steward.fleetView') === 'table' ? 'table' : 'cards'));
  const [tag, setTag] = useState('');
  const [status, setStatus] = useState<HostStatus | ''>('');
  const [sort, setSort] = useState<SortKey>('name');
  const [descending, setDescending] = useState(false);

  const all = useMemo(() => [...servers.values()], [servers]);
  const tags = useMemo(() => [...new Set(all.flatMap((s) => s.tags))].sort(), [all]);
  const shown = useMemo(() => {
    const list = all.filter((s) => (!tag || s.tags.includes(tag)) && (!status || s.status === status));
    list.sort((a, b) => {
      const x = sortValue(a, sort);
      const y = sortValue(b, sort);
      const c = x < y ? -1 : x > y ? 1 : a.name.localeCompare(b.name);
      return descending ? -c : c;
    });
    return list;
  }, [all, tag, status, sort, descending]);
  const counts = useMemo(() => {
    const c: Record<HostStatus, number> = { online: 0, degraded: 0, offline: 0, unknown: 0 };
    for (const s of all) c[s.status] += 1;
    return c;
  }, [all]);

  const choose = (v: 'cards' | 'table') => {
    setView(v);
    localStorage.setItem('steward.fleetView', v);
  };

  return (
    <section className="card fleet" aria-labelledby="fleet-title">
      <div className="fleet-head">
        <h2 id="fleet-title">{t('metrics.fleet')}</h2>
        <span className={live ? 'badge badge-live' : 'badge'} data-testid="live-state">
          {live ? t('metrics.live') : t('metrics.polling')}
        </span>
        <p className="fleet-counts muted small">
          {STATUSES.map((s) => (
            <span key={s}>{t('metrics.count', { status: t(`metrics.status.${s}`), count: counts[s] })}</span>
          ))}
        </p>
      </div>
      <div className="fleet-toolbar">
        <div className="segmented" role="group" aria-label={t('metrics.view')}>
          <Button variant={view === 'cards' ? 'primary' : 'secondary'} aria-pressed={view === 'cards'} onClick={() => choose('cards')}>
            {t('metrics.cards')}
          </Button>
          <Button variant={view === 'table' ? 'primary' : 'secondary'} aria-pressed={view === 'table'} onClick={() => choose('table')}>
            {t('metrics.table')}
          </Button>
        </div>
        <SelectField label={t('metrics.filterTag')} value={tag} onChange={(e) => setTag(e.target.value)}>
          <option value="">{t('metrics.allTags')}</option>
          {tags.map((tg) => (
            <option key={tg} value={tg}>
              {tg}
            </option>
          ))}
        </SelectField>
        <SelectField label={t('metrics.filterStatus')} value={status} onChange={(e) => setStatus(e.target.value as HostStatus | '')}>
          <option value="">{t('metrics.allStatuses')}</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {t(`metrics.status.${s}`)}
            </option>
          ))}
        </SelectField>
        <SelectField label={t('metrics.sortBy')} value={sort} onChange={(e) => setSort(e.target.value as SortKey)}>
          {SORTS.map((k) => (
            <option key={k} value={k}>
              {t(`metrics.sort.${k}`)}
            </option>
          ))}
        </SelectField>
        <Button onClick={() => setDescending((d) => !d)} aria-pressed={descending}>
          {descending ? t('metrics.descending') : t('metrics.ascending')}
        </Button>
      </div>
      {error !== null && !live && <ErrorAlert error={error} />}
      {!loaded ? (
        <Loading />
      ) : shown.length === 0 ? (
        <p className="muted">{all.length === 0 ? t('metrics.noServers') : t('metrics.noMatch')}</p>
      ) : view === 'cards' ? (
        <ul className="fleet-grid">
          {shown.map((s) => (
            <ServerCard key={s.id} s={s} />
          ))}
        </ul>
      ) : (
        <DataTable
          caption={t('metrics.fleet')}
          headers={[
            t('metrics.sort.name'),
            t('metrics.sort.status'),
            t('metrics.cpu'),
            t('metrics.memory'),
            t('metrics.disk'),
            t('metrics.network'),
            t('metrics.load'),
            t('metrics.trend'),
          ]}
        >
          {shown.map((s) => (
            <tr key={s.id} data-testid="fleet-row" data-server={s.id}>
              <td>
                <Link to={`/servers/${s.id}`}>{s.name}</Link>
              </td>
              <td>
                <StatusBadge status={s.status} />
              </td>
              <td className="num">{f.pct(s.cpu_pct)}</td>
              <td className="num">{f.pct(s.mem_used_pct)}</td>
              <td className="num">{f.pct(s.disk_used_pct)}</td>
              <td className="num nowrap">{t('metrics.rxTx', { rx: f.rate(s.net_rx_bps), tx: f.rate(s.net_tx_bps) })}</td>
              <td className="num">{f.load(s.load1)}</td>
              <td>
                <Sparkline values={s.sparkline ?? []} label={t('metrics.sparkline', { count: s.sparkline?.length ?? 0 })} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      {usage && usage.items.length > 0 && (
        <p className="muted small" data-testid="fleet-disk-use">
          {t('metrics.fleetDiskUse', {
            perDay: formatBytes(usage.bytes_per_day, i18n.language),
            stored: formatBytes(usage.bytes, i18n.language),
            projected: formatBytes(usage.projected_bytes, i18n.language),
          })}
        </p>
      )}
    </section>
  );
}
