// The chart groups of a server's Metrics section: which series each chart draws, under which
// legend, in which unit. Pure (no React), so the grouping is unit-tested.
import type { ChartData } from './MetricChart';
import type { Unit } from './format';

export type Line = { name: string; label: string };

/** Points per series, keyed `name|label`; values are each step's average. */
export type Points = Map<string, { line: Line; pts: Map<number, number> }>;

export type GroupSpec = {
  /** The chart's key: its title is `metrics.groups.<key>`. */
  key: string;
  unit: Unit;
  max?: number;
  /** The legend of a series in this chart, or null when the series is not in it. */
  line: (l: Line) => string | null;
  /** Drawn as `of / to × 100` per label (inodes used of the filesystem's inodes). */
  ratio?: { of: string; to: string };
  /** Lines in the natural order of their legends (cpu2 before cpu10), not the series'. */
  sorted?: boolean;
};

/** The metric names the charts draw (the `names` of the range query). */
export const CHART_NAMES = [
  'cpu.usage',
  'cpu.user',
  'cpu.system',
  'cpu.iowait',
  'cpu.steal',
  'load.1',
  'load.5',
  'load.15',
  'mem.used',
  'swap.used',
  'disk.used_pct',
  'disk.inodes_used',
  'disk.inodes_total',
  'diskio.read_bytes',
  'diskio.write_bytes',
  'net.rx_bytes',
  'net.tx_bytes',
  'net.rx_packets',
  'net.tx_packets',
  'net.rx_errors',
  'net.tx_errors',
  'procs.count',
  'systemd.failed_units',
  'docker.cpu_pct',
  'docker.mem_bytes',
];

type T = (key: string, options?: Record<string, string>) => string;

/** Every chart group, in page order; `t` translates the legends. */
export function chartGroups(t: T): GroupSpec[] {
  const cpu: Record<string, string> = {
    'cpu.user': t('metrics.series.user'),
    'cpu.system': t('metrics.series.system'),
    'cpu.iowait': t('metrics.series.iowait'),
    'cpu.steal': t('metrics.series.steal'),
  };
  const load: Record<string, string> = {
    'load.1': t('metrics.series.load1'),
    'load.5': t('metrics.series.load5'),
    'load.15': t('metrics.series.load15'),
  };
  /** In and out of each interface, for one pair of metric names. */
  const inOut =
    (rx: string, tx: string) =>
    (l: Line): string | null =>
      l.name === rx ? t('metrics.series.rx', { iface: l.label }) : l.name === tx ? t('metrics.series.tx', { iface: l.label }) : null;
  const one = (name: string, legend: string) => (l: Line) => (l.name === name ? legend : null);
  return [
    { key: 'cpu', unit: 'percent', max: 100, line: (l) => (l.label === '' ? (cpu[l.name] ?? null) : null) },
    // Per core: busy time, one line per core (labelled cpu0, cpu1 …).
    { key: 'cores', unit: 'percent', max: 100, sorted: true, line: (l) => (l.name === 'cpu.usage' && l.label !== '' ? l.label : null) },
    { key: 'load', unit: 'load', line: (l) => load[l.name] ?? null },
    {
      key: 'memory',
      unit: 'bytes',
      line: (l) => (l.name === 'mem.used' ? t('metrics.series.memUsed') : l.name === 'swap.used' ? t('metrics.series.swapUsed') : null),
    },
    { key: 'disk', unit: 'percent', max: 100, line: (l) => (l.name === 'disk.used_pct' ? l.label : null) },
    {
      key: 'inodes',
      unit: 'percent',
      max: 100,
      line: (l) => (l.name === 'disk.inodes_used' ? l.label : null),
      ratio: { of: 'disk.inodes_used', to: 'disk.inodes_total' },
    },
    {
      key: 'diskio',
      unit: 'bytes_per_s',
      line: (l) =>
        l.name === 'diskio.read_bytes'
          ? t('metrics.series.read', { device: l.label })
          : l.name === 'diskio.write_bytes'
            ? t('metrics.series.write', { device: l.label })
            : null,
    },
    { key: 'network', unit: 'bytes_per_s', line: inOut('net.rx_bytes', 'net.tx_bytes') },
    { key: 'packets', unit: 'per_s', line: inOut('net.rx_packets', 'net.tx_packets') },
    { key: 'netErrors', unit: 'per_s', line: inOut('net.rx_errors', 'net.tx_errors') },
    { key: 'processes', unit: 'count', line: one('procs.count', t('metrics.series.processes')) },
    { key: 'failedUnits', unit: 'count', line: one('systemd.failed_units', t('metrics.series.failedUnits')) },
    // Containers by name; CPU is 100 per fully used core, so it has no upper bound.
    { key: 'containersCpu', unit: 'percent', line: (l) => (l.name === 'docker.cpu_pct' ? l.label : null) },
    { key: 'containersMemory', unit: 'bytes', line: (l) => (l.name === 'docker.mem_bytes' ? l.label : null) },
  ];
}

/** The chart of one group from `from` on, or null when it has nothing to draw. */
export function chartOf(points: Points, spec: GroupSpec, from: number): ChartData | null {
  const lines: { label: string; pts: Map<number, number> }[] = [];
  for (const p of points.values()) {
    const label = spec.line(p.line);
    if (label === null) continue;
    if (!spec.ratio) {
      lines.push({ label, pts: p.pts });
      continue;
    }
    const total = points.get(`${spec.ratio.to}|${p.line.label}`);
    if (!total) continue;
    const pts = new Map<number, number>();
    for (const [t, v] of p.pts) {
      const whole = total.pts.get(t);
      if (whole !== undefined && whole > 0) pts.set(t, (v * 100) / whole);
    }
    // A filesystem without inodes (btrfs, some network filesystems) has no line.
    if (pts.size > 0) lines.push({ label, pts });
  }
  if (lines.length === 0) return null;
  if (spec.sorted) lines.sort((a, b) => a.label.localeCompare(b.label, undefined, { numeric: true }));
  const ts = [...new Set(lines.flatMap((l) => [...l.pts.keys()]))].filter((t) => t >= from).sort((a, b) => a - b);
  if (ts.length === 0) return null;
  return {
    xs: ts.map((t) => t / 1000),
    lines: lines.map((l) => ({ label: l.label, values: ts.map((t) => l.pts.get(t) ?? null) })),
  };
}
