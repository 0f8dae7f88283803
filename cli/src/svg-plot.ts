/**
 * Inline SVG line plots for `metaloop report` (report.ts, report-returns.ts): one `<polyline
 * data-series="…">` per series, one point per value, axes with nice ticks, linear or log y.
 */

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly xs: readonly number[];
  readonly ys: readonly number[];
  /** Draw a circle at every point. */
  readonly markers?: boolean;
  /** Error bars: half-widths per point (e.g. 95% CIs). */
  readonly errors?: readonly (number | undefined)[];
}

export interface PlotOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly id: string;
  readonly width?: number;
  readonly height?: number;
}

export const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** A number as an axis label shows it (3 significant digits, exponent outside 1e-3..1e4). */
export const fmt = (x: number) => (Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(1) : Number(x.toPrecision(3)).toString());

/** Round tick values in [lo, hi]; `integer`: whole numbers only (meta-steps), never 500.2. */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const nice = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const step = integer ? Math.max(1, Math.round(nice)) : nice;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** An inline SVG line plot; y is log-scaled when every value is positive and they span > 20×. */
export function svgPlot(o: PlotOptions, series: readonly Series[]): string {
  const W = o.width ?? 760;
  const H = o.height ?? 320;
  const m = { l: 64, r: 150, t: 30, b: 44 };
  const all = series.flatMap((s) => s.ys.map((y, i) => ({ x: s.xs[i]!, y }))).filter((p) => Number.isFinite(p.y) && Number.isFinite(p.x));
  const errorAt = (s: Series, i: number) => {
    const e = s.errors?.[i];
    return e !== undefined && e > 0 && Number.isFinite(e) ? e : 0;
  };
  const head = `<svg xmlns="http://www.w3.org/2000/svg" id="${o.id}" class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(o.title)}">`;
  const title = `<text x="${m.l}" y="18" class="title">${escapeHtml(o.title)}</text>`;
  if (all.length === 0) return `${head}${title}<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data recorded</text></svg>`;
  const xMin = Math.min(...all.map((p) => p.x));
  const xMax = Math.max(...all.map((p) => p.x));
  const yMinRaw = Math.min(...all.map((p) => p.y));
  const yMaxRaw = Math.max(...all.map((p) => p.y));
  const log = yMinRaw > 0 && yMaxRaw / yMinRaw > 20;
  // The lower end of a CI bar (on a log axis, never at or below 0).
  const low = (y: number, e: number) => (log && y - e <= 0 ? y / 2 : y - e);
  // The y-range holds the CI bars too, so they stay inside the frame.
  const ends = series.flatMap((s) =>
    s.ys.flatMap((y, i) => (Number.isFinite(y) && Number.isFinite(s.xs[i]!) && (!log || y > 0) ? [low(y, errorAt(s, i)), y + errorAt(s, i)] : [])),
  );
  const yLo = Math.min(...ends);
  const yHi = Math.max(...ends);
  const ty = (y: number) => (log ? Math.log10(y) : y);
  let y0 = ty(yLo);
  let y1 = ty(yHi);
  if (y1 - y0 < 1e-12) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  // Meta-steps are whole numbers: whole-number ticks. One x value: in the middle, one tick.
  const integerX = all.every((p) => Number.isInteger(p.x));
  const single = xMax === xMin;
  // Markers and CI bars at the ends are kept off the frame.
  const xPad = single ? Math.max(1, Math.abs(xMin) * 0.1) : series.some((s) => s.markers) ? (xMax - xMin) * 0.04 : 0;
  const x0 = xMin - xPad;
  const x1 = xMax + xPad;
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const px = (x: number) => (m.l + ((x - x0) / (x1 - x0)) * pw).toFixed(1);
  const py = (y: number) => (m.t + ph - ((ty(y) - y0) / (y1 - y0)) * ph).toFixed(1);
  const parts = [head, title];
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" class="frame"/>`);
  // Up to 4 distinct x values (a few evaluations): a tick at each, so every point has its step.
  const distinctX = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
  for (const t of distinctX.length <= 4 ? distinctX : niceTicks(x0, x1, 5, integerX)) {
    parts.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${m.t}" y2="${m.t + ph}" class="grid"/><text x="${px(t)}" y="${m.t + ph + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  const yTicks = log ? niceTicks(y0, y1).map((e) => 10 ** e) : niceTicks(y0, y1);
  for (const t of yTicks) {
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${py(t)}" y2="${py(t)}" class="grid"/><text x="${m.l - 6}" y="${py(t)}" dy="4" text-anchor="end">${fmt(t)}</text>`);
  }
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(o.yLabel)}${log ? ' (log)' : ''}</text>`);
  series.forEach((s, k) => {
    const pts: string[] = [];
    const circles: string[] = [];
    s.xs.forEach((x, i) => {
      const y = s.ys[i]!;
      if (!Number.isFinite(y) || (log && y <= 0)) return;
      pts.push(`${px(x)},${py(y)}`);
      const e = errorAt(s, i);
      if (e > 0) {
        circles.push(`<line class="ci" x1="${px(x)}" x2="${px(x)}" y1="${py(low(y, e))}" y2="${py(y + e)}" stroke="${s.color}" stroke-opacity="0.5"/>`);
      }
      if (s.markers) circles.push(`<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${s.color}"><title>${escapeHtml(s.name)} @ ${x}: ${y}</title></circle>`);
    });
    parts.push(`<polyline data-series="${escapeHtml(s.name)}" points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
    parts.push(...circles);
    const ly = m.t + 14 + k * 18;
    parts.push(`<line x1="${m.l + pw + 12}" x2="${m.l + pw + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/><text x="${m.l + pw + 38}" y="${ly}">${escapeHtml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
