// A check's history as a uPlot chart: the response time as a line, and each run that was not up
// as a band behind it (degraded in amber, down in red). uPlot draws on a canvas and sets sizes
// through element.style, which the strict CSP allows; its stylesheet comes from the bundle.
import { useEffect, useRef } from 'react';
import { useTranslation } from 'react-i18next';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Schemas } from '../../api/client';

type Point = Schemas['CheckResultPoint'];

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** Paints a band for every run that was not up, as wide as the gap to its neighbours. */
function statusBands(points: Point[]): uPlot.Plugin {
  return {
    hooks: {
      drawClear: (u: uPlot) => {
        const xs = u.data[0];
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        const colors = { down: cssVar('--error-text', '#b42318'), degraded: cssVar('--warning-text', '#6b4e00') };
        ctx.save();
        ctx.globalAlpha = 0.18;
        points.forEach((p, i) => {
          if (p.status === 'up') return;
          const x = xs[i]!;
          // Half the gap to each neighbour; the first and last runs mirror their one gap.
          const prev = i > 0 ? xs[i - 1]! : i < xs.length - 1 ? 2 * x - xs[i + 1]! : x;
          const next = i < xs.length - 1 ? xs[i + 1]! : i > 0 ? 2 * x - xs[i - 1]! : x;
          const left = u.valToPos((prev + x) / 2, 'x', true);
          const right = u.valToPos((x + next) / 2, 'x', true);
          ctx.fillStyle = colors[p.status];
          ctx.fillRect(left, top, Math.max(right - left, 2 * uPlot.pxRatio), height);
        });
        ctx.restore();
      },
    },
  };
}

export default function CheckChart({ points, label }: { points: Point[]; label: string }) {
  const { t, i18n } = useTranslation();
  const holder = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const xs = points.map((p) => new Date(p.at).getTime() / 1000);
    const latency = points.map((p) => (p.status === 'down' ? null : (p.latency_ms ?? null)));
    const text = cssVar('--muted', '#57606a');
    const grid = cssVar('--border', '#d0d7de');
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const number = new Intl.NumberFormat(i18n.language, { maximumFractionDigits: 0 });
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 280),
      height: 260,
      plugins: [statusBands(points)],
      scales: { x: { time: true, range: (_u, min, max) => [min, Math.max(max, Date.now() / 1000)] }, ms: { auto: true, range: (_u, _min, max) => [0, Math.max(max ?? 0, 10) * 1.1] } },
      axes: [
        { ...axis },
        { ...axis, scale: 'ms', values: (_u, ticks) => ticks.map((v) => number.format(v)), size: 60 },
      ],
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      series: [
        {},
        {
          label: t('checks.responseTime'),
          scale: 'ms',
          stroke: cssVar('--primary', '#0b5cd5'),
          width: 2,
          spanGaps: false,
          points: { show: points.length < 120 },
        },
      ],
    };
    const plot = new uPlot(opts, [xs, latency], el);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 280), height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [points, t, i18n.language]);

  return (
    <figure className="check-chart">
      <div ref={holder} role="img" aria-label={label} data-testid="check-chart" />
      <figcaption className="check-chart-legend">
        <span className="check-key check-key-line">{t('checks.responseTime')}</span>
        <span className="check-key check-key-degraded">{t('checks.status.degraded')}</span>
        <span className="check-key check-key-down">{t('checks.status.down')}</span>
      </figcaption>
    </figure>
  );
}
