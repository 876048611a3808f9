// Two small SVG charts for the usage page: bars over time (stacked by series) and
// horizontal bars of totals. SVG rather than a canvas chart library: a few dozen lines, no
// bundle cost, and every bar carries its number as a <title> for pointer and screen reader
// alike (the page shows the same numbers as a table too).
import { fmt } from './common';

const PALETTE = ['#0b5394', '#b45f06', '#38761d', '#741b47', '#134f5c', '#7f6000', '#3d3d99', '#990000'];

export function colour(i: number): string {
  return PALETTE[i % PALETTE.length];
}

export interface TimeBucket {
  label: string; // e.g. "Dec 3, 14:00"
  values: Record<string, number>; // series -> quantity
}

export function TimeBars({ title, buckets, series, unit }: { title: string; buckets: TimeBucket[]; series: string[]; unit: string }) {
  const width = 640;
  const height = 220;
  const pad = { left: 56, right: 8, top: 8, bottom: 40 };
  const totals = buckets.map((b) => series.reduce((n, s) => n + (b.values[s] ?? 0), 0));
  const top = Math.max(...totals, 0) || 1;
  const slot = (width - pad.left - pad.right) / Math.max(buckets.length, 1);
  const bar = Math.max(2, Math.min(48, slot * 0.7));
  const y = (v: number) => pad.top + (height - pad.top - pad.bottom) * (1 - v / top);
  const everyNth = Math.ceil(buckets.length / 8);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}: ${buckets.length} period(s), at most ${fmt(top)} ${unit}`}
        data-testid="time-chart" data-bars={buckets.length}>
        <line x1={pad.left} x2={width - pad.right} y1={y(0)} y2={y(0)} stroke="#57606a" />
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={pad.left - 4} x2={pad.left} y1={y(top * f)} y2={y(top * f)} stroke="#57606a" />
            <text x={pad.left - 6} y={y(top * f) + 4} textAnchor="end" fontSize="11" fill="#1b1f24">{fmt(top * f)}</text>
          </g>
        ))}
        {buckets.map((b, i) => {
          const x = pad.left + slot * i + (slot - bar) / 2;
          let base = 0;
          return (
            <g key={b.label} data-bucket={b.label}>
              {series.map((s, j) => {
                const v = b.values[s] ?? 0;
                if (v <= 0) return null;
                const rect = <rect key={s} className="bar-rect" x={x} width={bar} y={y(base + v)} height={Math.max(1, y(base) - y(base + v))} fill={colour(j)}>
                  <title>{`${b.label} · ${s || '(no flavor)'}: ${fmt(v)} ${unit}`}</title>
                </rect>;
                base += v;
                return rect;
              })}
              {i % everyNth === 0 && <text x={x + bar / 2} y={height - pad.bottom + 14} textAnchor="middle" fontSize="11" fill="#1b1f24">{b.label}</text>}
            </g>
          );
        })}
      </svg>
      <figcaption>{title} <Legend series={series} /></figcaption>
    </figure>
  );
}

export function TotalBars({ title, rows, unit }: { title: string; rows: { label: string; value: number }[]; unit: string }) {
  const top = Math.max(...rows.map((r) => r.value), 0) || 1;
  const rowHeight = 26;
  const labelWidth = 200;
  const width = 640;
  const height = rows.length * rowHeight + 8;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}: ${rows.length} bar(s)`} data-testid="total-chart" data-bars={rows.length}>
        {rows.map((r, i) => {
          const w = ((width - labelWidth - 90) * r.value) / top;
          const y = 4 + i * rowHeight;
          return (
            <g key={r.label}>
              <text x={labelWidth - 6} y={y + 16} textAnchor="end" fontSize="12" fill="#1b1f24">{r.label}</text>
              <rect className="bar-rect" x={labelWidth} y={y + 3} width={Math.max(1, w)} height={rowHeight - 8} fill={colour(i)}>
                <title>{`${r.label}: ${fmt(r.value)} ${unit}`}</title>
              </rect>
              <text x={labelWidth + Math.max(1, w) + 6} y={y + 16} fontSize="12" fill="#1b1f24">{fmt(r.value)}</text>
            </g>
          );
        })}
      </svg>
      <figcaption>{title}</figcaption>
    </figure>
  );
}

function Legend({ series }: { series: string[] }) {
  if (series.length < 2) return null;
  return (
    <span className="legend">
      {series.map((s, i) => (
        <span key={s} className="legend-item"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill={colour(i)} /></svg> {s || '(no flavor)'}</span>
      ))}
    </span>
  );
}
