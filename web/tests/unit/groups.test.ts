// The server page's chart groups: which series go in which chart, under which legend.
import { describe, expect, test } from 'vitest';
import { CHART_NAMES, chartGroups, chartOf, type Points } from '../../src/metrics/groups';

const t = (key: string, options?: Record<string, string>) => (options ? `${key}(${Object.values(options).join(',')})` : key);
const groups = chartGroups(t);
const group = (key: string) => groups.find((g) => g.key === key)!;

function points(series: [string, string, [number, number][]][]): Points {
  return new Map(series.map(([name, label, pts]) => [`${name}|${label}`, { line: { name, label }, pts: new Map(pts) }]));
}

describe('chart groups', () => {
  test('every series a chart draws is asked for, and every chart has a title key', () => {
    for (const g of groups) {
      const drawn = CHART_NAMES.filter((name) => g.line({ name, label: 'x' }) !== null || g.line({ name, label: '' }) !== null);
      expect(drawn.length, g.key).toBeGreaterThan(0);
    }
    expect(new Set(groups.map((g) => g.key)).size).toBe(groups.length);
  });

  test('total CPU and per-core CPU are apart, cores in natural order', () => {
    const p = points([
      ['cpu.usage', '', [[1000, 50]]],
      ['cpu.user', '', [[1000, 40]]],
      ['cpu.usage', 'cpu10', [[1000, 90]]],
      ['cpu.usage', 'cpu2', [[1000, 10]]],
      ['cpu.user', 'cpu2', [[1000, 5]]],
    ]);
    expect(chartOf(p, group('cpu'), 0)!.lines.map((l) => l.label)).toEqual(['metrics.series.user']);
    const cores = chartOf(p, group('cores'), 0)!;
    expect(cores.lines.map((l) => [l.label, l.values[0]])).toEqual([
      ['cpu2', 10],
      ['cpu10', 90],
    ]);
  });

  test('inodes are drawn as the share used, per filesystem, where the total is known', () => {
    const p = points([
      ['disk.inodes_used', '/', [[1000, 250], [2000, 500]]],
      ['disk.inodes_total', '/', [[1000, 1000], [2000, 1000]]],
      // btrfs reports no inodes: no line rather than a division by zero.
      ['disk.inodes_used', '/srv', [[1000, 0]]],
      ['disk.inodes_total', '/srv', [[1000, 0]]],
    ]);
    const c = chartOf(p, group('inodes'), 0)!;
    expect(c.xs).toEqual([1, 2]);
    expect(c.lines).toEqual([{ label: '/', values: [25, 50] }]);
  });

  test('packets and errors per interface, containers by name, and nothing when a host has none', () => {
    const p = points([
      ['net.rx_packets', 'eth0', [[1000, 12]]],
      ['net.tx_errors', 'eth0', [[1000, 1]]],
      ['procs.count', '', [[1000, 230]]],
      ['docker.cpu_pct', 'web-1', [[1000, 150]]],
      ['docker.mem_bytes', 'web-1', [[1000, 1 << 20]]],
    ]);
    expect(chartOf(p, group('packets'), 0)!.lines.map((l) => l.label)).toEqual(['metrics.series.rx(eth0)']);
    expect(chartOf(p, group('netErrors'), 0)!.lines.map((l) => l.label)).toEqual(['metrics.series.tx(eth0)']);
    expect(chartOf(p, group('processes'), 0)!.lines[0]!.values).toEqual([230]);
    expect(chartOf(p, group('containersCpu'), 0)!.lines).toEqual([{ label: 'web-1', values: [150] }]);
    expect(group('containersCpu').max, 'a container may use several cores').toBeUndefined();
    expect(chartOf(p, group('containersMemory'), 0)!.lines[0]!.label).toBe('web-1');
    expect(chartOf(p, group('failedUnits'), 0), 'no systemd, no chart').toBeNull();
  });

  test('points before the range start are left out', () => {
    const p = points([['procs.count', '', [[1000, 1], [5000, 2]]]]);
    expect(chartOf(p, group('processes'), 2000)!.xs).toEqual([5]);
    expect(chartOf(p, group('processes'), 6000)).toBeNull();
  });
});
