// Merging live messages: snapshots replace, updates merge newest values and grow sparklines.
import { describe, expect, test } from 'vitest';
import { SPARK_LEN, apply, type ServerMetrics } from '../../src/metrics/live';

const server = (over: Partial<ServerMetrics>): ServerMetrics => ({
  id: 's1',
  name: 'web',
  tags: [],
  monitoring: 'agentless',
  interval_secs: 10,
  status: 'online',
  last_sample_at: '2026-01-01T00:00:00Z',
  cpu_pct: 10,
  load1: null,
  mem_used_pct: null,
  disk_used_pct: null,
  disk_mount: null,
  net_rx_bps: null,
  net_tx_bps: null,
  failed_units: null,
  checks_down: 0,
  ...over,
});

describe('apply', () => {
  test('a snapshot replaces everything', () => {
    const before = new Map([['old', server({ id: 'old' })]]);
    const after = apply(before, { type: 'snapshot', part: 0, parts: 1, at: '', servers: [server({ sparkline: [1, 2] })] });
    expect([...after.keys()]).toEqual(['s1']);
    expect(after.get('s1')?.sparkline).toEqual([1, 2]);
  });

  test('a snapshot in parts: the first replaces, the others add', () => {
    const before = new Map([['old', server({ id: 'old' })]]);
    let m = apply(before, { type: 'snapshot', part: 0, parts: 2, at: '', servers: [server({ id: 'a' })] });
    m = apply(m, { type: 'snapshot', part: 1, parts: 2, at: '', servers: [server({ id: 'b' })] });
    expect([...m.keys()].sort()).toEqual(['a', 'b']);
  });

  test('updates append CPU to the sparkline once per sample and drop removed servers', () => {
    let m = apply(new Map(), { type: 'snapshot', part: 0, parts: 1, at: '', servers: [server({ sparkline: [10] }), server({ id: 's2' })] });
    m = apply(m, { type: 'update', at: '', servers: [server({ cpu_pct: 20, last_sample_at: '2026-01-01T00:00:10Z' })] });
    expect(m.get('s1')?.sparkline).toEqual([10, 20]);
    // A status change without a new sample adds nothing.
    m = apply(m, { type: 'update', at: '', servers: [server({ cpu_pct: 20, status: 'offline', last_sample_at: '2026-01-01T00:00:10Z' })] });
    expect(m.get('s1')?.sparkline).toEqual([10, 20]);
    expect(m.get('s1')?.status).toBe('offline');
    m = apply(m, { type: 'update', at: '', servers: [], removed: ['s2'] });
    expect(m.has('s2')).toBe(false);
  });

  test('the sparkline stays bounded', () => {
    let m = apply(new Map(), { type: 'snapshot', part: 0, parts: 1, at: '', servers: [server({ sparkline: [] })] });
    for (let i = 0; i < SPARK_LEN + 20; i++) {
      m = apply(m, { type: 'update', at: '', servers: [server({ cpu_pct: i, last_sample_at: new Date(i * 1000).toISOString() })] });
    }
    const spark = m.get('s1')?.sparkline ?? [];
    expect(spark.length).toBe(SPARK_LEN);
    expect(spark.at(-1)).toBe(SPARK_LEN + 19);
  });
});
