// One uPlot chart of a metric group: several lines sharing a unit. The legend under the chart
// shows each line's exact value at the cursor (uPlot's own legend); axes and legend go through
// the shared formatter. uPlot draws on a canvas and sizes through element.style (allowed by the
// strict CSP); its stylesheet is imported from the bundle.
import { useEffect, useRef } from 'react';
import { useTranslation } from 'react-i18next';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatValue, type Unit } from './format';

export type ChartData = {
  /** Seconds. */
  xs: number[];
  lines: { label: string; values: (number | null)[] }[];
};

// Distinguishable on both themes' surfaces (3:1 against white and #161b22 for lines).
const PALETTE = ['#4a7fd4', '#d9480f', '#2f9e44', '#ae3ec9', '#e67700', '#1098ad', '#c2255c', '#5c7cfa'];

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function MetricChart({
  title,
  unit,
  data,
  max,
  range,
}: {
  title: string;
  unit: Unit;
  data: ChartData;
  max?: number;
  /** The time range shown, in seconds (the x axis spans it even where there is no data). */
  range: [number, number];
}) {
  const { i18n } = useTranslation();
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const xRange = useRef(range);
  const shape = `${unit}|${data.lines.map((l) => l.label).join('|')}|${i18n.language}`;

  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const text = cssVar('--muted', '#57606a');
    const grid = cssVar('--border', '#d0d7de');
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const fmt = (v: number | null) => formatValue(v, unit, i18n.language);
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 260),
      height: 200,
      scales: {
        x: { time: true, range: () => [xRange.current[0], xRange.current[1]] },
        y: { range: (_u, min, mx) => [Math.min(0, min ?? 0), max ?? Math.max(mx ?? 0, 1) * 1.05] },
      },
      axes: [{ ...axis }, { ...axis, values: (_u, ticks) => ticks.map((v) => fmt(v)), size: 80 }],
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      series: [
        { value: (_u, v) => (v === null ? '—' : new Date(v * 1000).toLocaleString(i18n.language)) },
        ...data.lines.map((l, i) => ({
          label: l.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          spanGaps: false,
          // Dots where lines are too short to see (a few samples so far, or gaps).
          points: { show: (_u: uPlot, _s: number, i0: number, i1: number) => i1 - i0 < 40 },
          value: (_u: uPlot, v: number | null) => fmt(v),
        })),
      ],
    };
    const p = new uPlot(opts, [data.xs, ...data.lines.map((l) => l.values)] as uPlot.AlignedData, el);
    plot.current = p;
    const resize = new ResizeObserver(() => p.setSize({ width: Math.max(el.clientWidth, 260), height: 200 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      p.destroy();
      plot.current = null;
    };
    // Rebuilt only when the lines change; new points go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  useEffect(() => {
    xRange.current = range;
    plot.current?.setData([data.xs, ...data.lines.map((l) => l.values)] as uPlot.AlignedData);
  }, [data, range]);

  return (
    <figure className="metric-chart">
      <figcaption>{title}</figcaption>
      <div ref={holder} role="img" aria-label={title} data-testid="metric-chart" />
    </figure>
  );
}
