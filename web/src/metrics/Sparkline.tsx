// A small SVG line of recent values (0–100 %), drawn with attributes only (no inline styles,
// which the CSP refuses).
export function Sparkline({ values, label, max = 100 }: { values: number[]; label: string; max?: number }) {
  const w = 120;
  const h = 28;
  if (values.length < 2) return <svg className="sparkline" viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label} />;
  const step = w / (values.length - 1);
  const y = (v: number) => (h - 2 - (Math.min(Math.max(v, 0), max) / max) * (h - 4)).toFixed(1);
  const line = values.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(' ');
  return (
    <svg className="sparkline" viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img" aria-label={label}>
      <polyline points={`0,${h} ${line} ${w},${h}`} className="sparkline-area" />
      <polyline points={line} className="sparkline-line" />
    </svg>
  );
}
