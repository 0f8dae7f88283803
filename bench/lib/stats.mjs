/** Small statistics helpers for benchmark samples (milliseconds or any unit). */

export function sorted(xs) {
  return [...xs].sort((a, b) => a - b);
}

export function quantile(xs, q) {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export const median = (xs) => quantile(xs, 0.5);

/** Median, min, max, p25/p75 and relative spread ((p75 - p25) / median) of samples. */
export function summary(xs) {
  const s = sorted(xs);
  const med = median(s);
  const p25 = quantile(s, 0.25);
  const p75 = quantile(s, 0.75);
  return {
    n: s.length,
    median: med,
    min: s[0],
    max: s[s.length - 1],
    p25,
    p75,
    iqrRel: med > 0 ? (p75 - p25) / med : NaN,
  };
}

/** Round for tables: 3 significant digits, more for small values. */
export function fmt(x, digits = 3) {
  if (x === undefined || x === null || Number.isNaN(x)) return 'n/a';
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  return Number(x.toPrecision(digits)).toString();
}

/** "median (min–max)" for a summary. */
export function fmtRange(s, digits = 3) {
  return `${fmt(s.median, digits)} (${fmt(s.min, 2)}–${fmt(s.max, 2)})`;
}

export const nowMs = () => performance.now();
