/**
 * Whether a measured difference says anything: the transport suite's verdicts.
 *
 * Each arm yields per-step times (ms between consecutive step events after the warm-up, pooled
 * over its runs). The overhead per meta-step is the difference of the two arms' mean step times;
 * its noise is the half-width of the 95% confidence interval of that difference (Welch: standard
 * errors of both arms combined, Student's t at the Welch–Satterthwaite degrees of freedom). A
 * verdict is "inconclusive" whenever the interval cannot decide it:
 *  - overhead: inconclusive when the overhead is not above its noise (overhead − noise ≤ 0, which
 *    includes every negative overhead: distributed was not measurably slower); otherwise met when
 *    the whole interval is within the target (overhead + noise ≤ target), missed when the whole
 *    interval is above it (overhead − noise > target), inconclusive when the target lies inside.
 *  - ratio (distributed / in-process steps/s = in-process mean / distributed mean step time): the
 *    same interval carried over (in-process mean / (in-process mean + overhead ± noise)); met when
 *    its low end reaches the target, missed when its high end is below, inconclusive otherwise.
 */

/** Two-sided 95% Student's t quantiles (0.975) for 1…30 degrees of freedom. */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export function t975(df) {
  if (!(df >= 1)) return Infinity;
  if (df <= 30) return T975[Math.floor(df) - 1];
  if (df <= 60) return 2.0;
  if (df <= 120) return 1.98;
  return 1.96;
}

function meanVar(xs) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const v = n > 1 ? xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1) : NaN;
  return { n, mean, v };
}

/**
 * Difference of means b − a with its 95% half-width: { diff, half, df, meanA, meanB }. Fewer than
 * two samples in an arm: half = Infinity (nothing can be told apart).
 */
export function meanDifference(a, b) {
  const A = meanVar(a);
  const B = meanVar(b);
  const diff = B.mean - A.mean;
  if (A.n < 2 || B.n < 2) return { diff, half: Infinity, df: NaN, meanA: A.mean, meanB: B.mean };
  const sa = A.v / A.n;
  const sb = B.v / B.n;
  const se = Math.sqrt(sa + sb);
  const df = se === 0 ? Infinity : (sa + sb) ** 2 / ((sa * sa) / (A.n - 1) + (sb * sb) / (B.n - 1));
  return { diff, half: t975(df) * se, df, meanA: A.mean, meanB: B.mean };
}

/** 'met' | 'missed' | 'inconclusive' for an overhead (ms) ± half against `limit` (ms). */
export function overheadVerdict(overhead, half, limit) {
  if (!Number.isFinite(overhead) || !(overhead - half > 0)) return 'inconclusive';
  if (overhead + half <= limit) return 'met';
  if (overhead - half > limit) return 'missed';
  return 'inconclusive';
}

/** The ratio in-process / distributed mean step time, with its interval: { value, lo, hi }. */
export function ratioInterval(inprocMean, overhead, half) {
  const at = (o) => (inprocMean + o > 0 ? inprocMean / (inprocMean + o) : Infinity);
  return { value: at(overhead), lo: at(overhead + half), hi: at(overhead - half) };
}

/** 'met' | 'missed' | 'inconclusive' for a ratio interval against a lower bound `target`. */
export function ratioVerdict({ lo, hi }, target) {
  if (lo >= target) return 'met';
  if (hi < target) return 'missed';
  return 'inconclusive';
}

/** How a verdict reads in a table cell. */
export const verdictCell = (v) => (v === 'met' ? 'met' : v === 'missed' ? '**missed**' : '*inconclusive*');
