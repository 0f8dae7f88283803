/**
 * How the CLI shows the figures of meta-RL runs (docs/meta-rl.md): mean episode returns (higher
 * is better) before and after k inner steps, and the paired gain from adaptation, each with its
 * 95% CI; never as a loss. format.ts and watch.ts call these for runs whose record or evaluation
 * carries returns.
 */
import type { metaloop } from '@metaloop/shared';

const num = (x: number | null | undefined, digits = 3) =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toPrecision(digits);
const signed = (x: number | null | undefined, digits = 3) => (x !== null && x !== undefined && x > 0 ? `+${num(x, digits)}` : num(x, digits));
const pm = (ci: number | null | undefined) => (ci ? ` ± ${num(ci, 2)}` : '');
const stepsWord = (k: number | undefined) => `${k ?? '?'} step${k === 1 ? '' : 's'}`;

/** Whether an evaluation is a meta-RL one (its figures are returns). */
export function isReturnEval(e: metaloop.IEvalSummary | null | undefined): boolean {
  return !!e && (e.postReturn?.length ?? 0) > 0;
}

/** `-43.1 -> -37.8` (θ's rollouts -> the adapted θ′'s), or nothing before the first step. */
export function trainReturnText(r: metaloop.IRunRecord): string {
  return (r.step ?? 0) > 0 ? `${num(r.preReturn)} -> ${num(r.postReturn)}` : '- (no step yet)';
}

/** `return -31.7 ± 3.9 after 1 step (gain +11.5 ± 0.8)` for entry i. */
function afterText(e: metaloop.IEvalSummary, i: number): string {
  const k = e.innerSteps?.[i];
  return `${num(e.postReturn?.[i])}${pm(e.returnCi95?.[i])} after ${stepsWord(k)} (gain ${signed(e.gain?.[i])}${pm(e.gainCi95?.[i])})`;
}

/** Every number labelled: `at step 40 on 40 tasks: return -43.2 ± 4.1 before adaptation, -31.7 ± 3.9 after 1 step (gain +11.5 ± 0.8), …`. */
export function returnEvalText(e: metaloop.IEvalSummary): string {
  const after = (e.postReturn ?? []).map((_, i) => afterText(e, i)).join(', ');
  return `at step ${e.step ?? 0} on ${e.tasks ?? 0} tasks: return ${num(e.preReturn)}${pm(e.preReturnCi95)} before adaptation, ${after}`;
}

/** The last entry in a few words: `eval at step 40: return -18.0 ± 1.8 after 3 steps (gain +25.2 ± 2.8)`. */
export function returnEvalBrief(e: metaloop.IEvalSummary): string {
  return `eval at step ${e.step ?? 0}: return ${afterText(e, (e.postReturn ?? []).length - 1)}`;
}

/** Compact, for the progress bar and event lines: `return -43.2 -> -31.7@1 -18.0@3 (gain +25.2±2.8@3)`. */
export function returnEvalCompact(e: metaloop.IEvalSummary, all = false): string {
  const steps = e.innerSteps ?? [];
  const last = steps.length - 1;
  const post = (e.postReturn ?? []).map((r, i) => `${num(r)}@${steps[i] ?? '?'}`);
  const gain = `gain ${signed(e.gain?.[last])}${e.gainCi95?.[last] ? `±${num(e.gainCi95[last], 2)}` : ''}@${steps[last] ?? '?'}`;
  return all ? `return ${num(e.preReturn)} -> ${post.join(' ')} (${gain})` : `return ${post[last] ?? '-'} (${gain})`;
}

/** The JSON of a meta-RL evaluation's figures. */
export function returnEvalJson(e: metaloop.IEvalSummary): Record<string, unknown> {
  return {
    preReturn: e.preReturn ?? 0,
    postReturn: [...(e.postReturn ?? [])],
    preReturnCi95: e.preReturnCi95 ?? 0,
    returnCi95: [...(e.returnCi95 ?? [])],
    gain: [...(e.gain ?? [])],
    gainCi95: [...(e.gainCi95 ?? [])],
  };
}

/** Summary lines at the end of a meta-RL run. */
export function returnSummaryLines(r: metaloop.IRunRecord): string[] {
  const lines = [`meta-train return (last step): ${num(r.preReturn)} before adaptation -> ${num(r.postReturn)} after`];
  const e = r.lastEval;
  if (e && isReturnEval(e)) {
    lines.push(`held-out return on ${e.tasks} tasks at step ${e.step} (mean ± 95% CI): ${num(e.preReturn, 4)}${pm(e.preReturnCi95)} before adaptation`);
    (e.postReturn ?? []).forEach((_, i) => lines.push(`  ${afterText(e, i)}`));
  }
  return lines;
}
