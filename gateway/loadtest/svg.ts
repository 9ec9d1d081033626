// Charts as inline SVG strings: the report must open with no network, and a few
// polylines and axes need no chart library.

export interface Series { readonly name: string; readonly points: readonly (readonly [number, number])[] }
export interface Bars { readonly name: string; readonly values: readonly number[] }

const W = 720;
const H = 260;
const M = { left: 64, right: 16, top: 28, bottom: 44 };
const COLORS = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1, 2 or 5 times a power of ten: round tick steps a reader can add up. */
function niceStep(range: number, ticks: number): number {
  const raw = range / Math.max(1, ticks);
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function num(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return a >= 10 ? v.toFixed(0) : a >= 1 ? v.toFixed(1).replace(/\.0$/, '') : v.toPrecision(2);
}

function legend(names: readonly string[]): string {
  return names.map((n, i) => `<g transform="translate(${M.left + i * 120},${H - 10})"><rect width="10" height="10" y="-9" fill="${COLORS[i % COLORS.length]}"/><text x="14" font-size="11">${esc(n)}</text></g>`).join('');
}

export interface LineOptions {
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** Labels the x axis with these values instead of even ticks (the spectrum's percentiles). */
  readonly xTicks?: readonly { readonly at: number; readonly label: string }[];
  /** Shaded spans of x behind the series, each labelled (the fault harness's faults). */
  readonly bands?: readonly { readonly from: number; readonly to: number; readonly label: string }[];
}

export function lineChart(o: LineOptions, series: readonly Series[]): string {
  const pts = series.flatMap((s) => s.points);
  const xMin = Math.min(...pts.map((p) => p[0]), 0);
  const xMax = Math.max(...pts.map((p) => p[0]), xMin + 1);
  const yMaxRaw = Math.max(...pts.map((p) => p[1]), 0);
  const yStep = niceStep(yMaxRaw || 1, 5);
  const yMax = Math.ceil((yMaxRaw || 1) / yStep) * yStep;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number): number => M.left + ((v - xMin) / (xMax - xMin)) * pw;
  const y = (v: number): number => M.top + ph - (v / yMax) * ph;
  const parts: string[] = [];
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${M.left - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${num(v)}</text>`);
  }
  const xt = o.xTicks ?? (() => {
    const step = niceStep(xMax - xMin, 8);
    const out: { at: number; label: string }[] = [];
    for (let v = Math.ceil(xMin / step) * step; v <= xMax + 1e-9; v += step) out.push({ at: v, label: num(v) });
    return out;
  })();
  for (const t of xt) parts.push(`<text x="${x(t.at).toFixed(1)}" y="${M.top + ph + 16}" font-size="11" text-anchor="middle">${esc(t.label)}</text>`);
  (o.bands ?? []).forEach((b, i) => {
    const x0 = x(Math.max(xMin, b.from));
    const x1 = x(Math.min(xMax, b.to));
    parts.push(`<rect class="band" data-label="${esc(b.label)}" x="${x0.toFixed(1)}" y="${M.top}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${ph}" fill="#fca5a5" fill-opacity="0.3"/>`
      + `<text x="${(x0 + 3).toFixed(1)}" y="${M.top + 12 + 12 * i}" font-size="10" fill="#991b1b">${esc(b.label)}</text>`);
  });
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
    parts.push(`<path class="series" data-series="${esc(s.name)}" data-points="${s.points.length}" d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.6"/>`);
  });
  return frame(o.id, o.title, o.xLabel, o.yLabel, parts.join('') + legend(series.map((s) => s.name)));
}

export interface BarOptions { readonly id: string; readonly title: string; readonly yLabel: string; readonly categories: readonly string[] }

export function barChart(o: BarOptions, bars: readonly Bars[]): string {
  const all = bars.flatMap((b) => b.values);
  const maxRaw = Math.max(...all, 0) || 1;
  const step = niceStep(maxRaw, 5);
  const yMax = Math.ceil(maxRaw / step) * step;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const y = (v: number): number => M.top + ph - (v / yMax) * ph;
  const slot = pw / Math.max(1, o.categories.length);
  const bw = (slot * 0.8) / Math.max(1, bars.length);
  const parts: string[] = [];
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${M.left - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${num(v)}</text>`);
  }
  o.categories.forEach((c, ci) => {
    const x0 = M.left + ci * slot + slot * 0.1;
    bars.forEach((b, bi) => {
      const v = b.values[ci] ?? 0;
      parts.push(`<rect class="bar" data-series="${esc(b.name)}" data-category="${esc(c)}" data-v="${v}" x="${(x0 + bi * bw).toFixed(1)}" y="${y(v).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${(M.top + ph - y(v)).toFixed(1)}" fill="${COLORS[bi % COLORS.length]}"><title>${esc(`${c} ${b.name}: ${v}`)}</title></rect>`);
    });
    parts.push(`<text x="${(x0 + slot * 0.4).toFixed(1)}" y="${M.top + ph + 16}" font-size="11" text-anchor="middle">${esc(c)}</text>`);
  });
  return frame(o.id, o.title, '', o.yLabel, parts.join('') + legend(bars.map((b) => b.name)));
}

function frame(id: string, title: string, xLabel: string, yLabel: string, body: string): string {
  const ph = H - M.top - M.bottom;
  return `<svg id="${esc(id)}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">`
    + `<text x="${M.left}" y="16" font-size="13" font-weight="600">${esc(title)}</text>`
    + `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#6b7280"/>`
    + `<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#6b7280"/>`
    + `<text x="${W - M.right}" y="${M.top + ph + 30}" font-size="11" text-anchor="end" fill="#4b5563">${esc(xLabel)}</text>`
    + `<text x="14" y="${M.top + ph / 2}" font-size="11" fill="#4b5563" transform="rotate(-90 14 ${M.top + ph / 2})" text-anchor="middle">${esc(yLabel)}</text>`
    + body + '</svg>';
}
