// The Metrics section of a server's page: one chart per metric group over a chosen range, a
// live mode that appends each new sample, the server's current status and how much room its
// metrics take per day. Loaded lazily (uPlot) by ServerDetailPage.
import { useEffect, useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call, type Schemas } from '../../api/client';
import { useApi } from '../../api/useApi';
import { Button, ErrorAlert, Loading } from '../../components/ui';
import { formatBytes } from '../../metrics/format';
import { CHART_NAMES, chartGroups, chartOf, type Points } from '../../metrics/groups';
import { useLive } from '../../metrics/live';
import { MetricChart } from '../../metrics/MetricChart';
import { StatusBadge } from './FleetOverview';
import '../../styles/metrics.css';

type Series = Schemas['MetricSeries'];
/** The lines shown, and the time span the charts cover (ms since the epoch). */
type Shown = { points: Points; from: number; until: number };

const RANGES = [
  ['1h', 3600],
  ['6h', 6 * 3600],
  ['24h', 24 * 3600],
  ['7d', 7 * 86400],
  ['30d', 30 * 86400],
  ['1y', 365 * 86400],
] as const;
type RangeKey = (typeof RANGES)[number][0];

const NAMES = CHART_NAMES.join(',');

function toPoints(series: Series[]): Points {
  const out: Points = new Map();
  for (const s of series) {
    out.set(`${s.name}|${s.label}`, { line: { name: s.name, label: s.label }, pts: new Map(s.points.map((p) => [p.t, p.avg])) });
  }
  return out;
}

export default function ServerMetrics({ server }: { server: Schemas['Server'] }) {
  const { t, i18n } = useTranslation();
  const groups = useMemo(() => chartGroups(t), [t]);
  const [range, setRange] = useState<RangeKey>('1h');
  const [live, setLive] = useState(false);
  const seconds = RANGES.find(([k]) => k === range)![1];

  // Another range (or server) shows the spinner until its data is in; Reload keeps the charts.
  const {
    data: shown,
    setData: setShown,
    error,
    reload: load,
  } = useApi<Shown>(
    async () => {
      const to = Date.now();
      const start = to - seconds * 1000;
      const r = await call(() =>
        api.GET('/api/v1/servers/{id}/metrics', {
          params: { path: { id: server.id }, query: { names: NAMES, from: String(start), to: String(to) } },
        }),
      );
      return { points: toPoints(r.series), from: start, until: to };
    },
    [server.id, seconds],
    { clearOnChange: true },
  );
  const points = shown?.points ?? null;
  const from = shown?.from ?? 0;
  const until = shown?.until ?? 0;

  // `undefined` while loading, `null` when this server has no metrics stored.
  const { data: usage } = useApi(
    () =>
      call(() => api.GET('/api/v1/metrics/disk-usage'))
        .then((u) => u.items.find((i) => i.server_id === server.id) ?? null)
        .catch(() => null),
    [server.id],
  );

  // Live mode: every new sample of this server is appended to the lines it belongs to.
  const { servers } = useLive(live ? { servers: [server.id] } : null, live ? `server:${server.id}` : 'off');
  const current = servers.get(server.id);
  useEffect(() => {
    if (!live || !current?.last_sample_at || !current.points) return;
    const ts = new Date(current.last_sample_at).getTime();
    setShown((prev) => {
      const next: Points = new Map(prev?.points ?? []);
      for (const p of current.points ?? []) {
        const key = `${p.name}|${p.label}`;
        const entry = next.get(key) ?? { line: { name: p.name, label: p.label }, pts: new Map<number, number>() };
        const pts = new Map(entry.pts);
        pts.set(ts, p.value);
        next.set(key, { line: entry.line, pts });
      }
      return { points: next, from: Date.now() - seconds * 1000, until: Math.max(Date.now(), ts) };
    });
  }, [live, current?.last_sample_at, current?.points, seconds, setShown]);

  const charts = useMemo(
    () => (points ? groups.map((g) => ({ g, data: chartOf(points, g, from) })).filter((c) => c.data !== null) : []),
    [points, groups, from],
  );

  return (
    <section className="card" aria-labelledby="server-metrics">
      <div className="fleet-head">
        <h2 id="server-metrics">{t('metrics.section')}</h2>
        {current && <StatusBadge status={current.status} />}
      </div>
      <div className="fleet-toolbar">
        <div className="segmented" role="group" aria-label={t('metrics.range')}>
          {RANGES.map(([k]) => (
            <Button key={k} variant={range === k ? 'primary' : 'secondary'} aria-pressed={range === k} onClick={() => setRange(k)}>
              {t(`metrics.ranges.${k}`)}
            </Button>
          ))}
        </div>
        <Button variant={live ? 'primary' : 'secondary'} aria-pressed={live} onClick={() => setLive((v) => !v)} data-testid="live-toggle">
          {t('metrics.liveMode')}
        </Button>
        <Button variant="ghost" onClick={() => void load()}>
          {t('metrics.reload')}
        </Button>
      </div>
      {error !== null && <ErrorAlert error={error} />}
      {!points ? (
        <Loading />
      ) : charts.length === 0 ? (
        <p className="muted">{t('metrics.noData')}</p>
      ) : (
        <div className="metric-charts">
          {charts.map(({ g, data }) => (
            <MetricChart key={g.key} title={t(`metrics.groups.${g.key}`)} unit={g.unit} max={g.max} data={data!} range={[from / 1000, until / 1000]} />
          ))}
        </div>
      )}
      <p className="muted small" data-testid="metrics-disk-use">
        {usage === undefined
          ? '…'
          : usage === null
            ? t('metrics.diskUseNone')
            : t('metrics.diskUse', {
                perDay: formatBytes(usage.bytes_per_day, i18n.language),
                stored: formatBytes(usage.bytes, i18n.language),
                projected: formatBytes(usage.projected_bytes, i18n.language),
              })}
      </p>
      {current?.last_sample_at && (
        <p className="muted small">
          {t('metrics.lastSample', { when: new Date(current.last_sample_at).toLocaleString(i18n.language) })}
        </p>
      )}
    </section>
  );
}
