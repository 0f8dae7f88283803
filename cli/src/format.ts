/** How the CLI shows run records: progress lines, summaries, tables and JSON. */
import { type metaloop, stateFromProto } from '@metaloop/shared';
import { isReturnEval, returnEvalBrief, returnEvalJson, returnEvalText, returnSummaryLines, trainReturnText } from './returns.js';

const num = (x: number | null | undefined, digits = 3) =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toPrecision(digits);

export interface EvalJson {
  step: number;
  tasks: number;
  innerSteps: number[];
  preLoss: number;
  postLoss: number[];
  /** Classification: mean held-out query accuracy after innerSteps[i]. */
  accuracy?: number[];
  /** 95% CI half-width (1.96·s/√n over tasks) of accuracy (classification) or postLoss (regression). */
  ci95?: number[];
  /** 95% CI half-width of postLoss. */
  lossCi95?: number[];
  /** Meta-RL: returns before and after innerSteps[i], their CIs, the paired gains (returns.ts). */
  preReturn?: number;
  postReturn?: number[];
  preReturnCi95?: number;
  returnCi95?: number[];
  gain?: number[];
  gainCi95?: number[];
}

function evalJson(e: metaloop.IEvalSummary | null | undefined): EvalJson | null {
  if (!e || !e.tasks) return null;
  const list = (xs: readonly number[] | null | undefined) => (xs && xs.length ? { value: [...xs] } : null);
  const accuracy = list(e.accuracy);
  const ci95 = list(e.ci95);
  const lossCi95 = list(e.lossCi95);
  return {
    step: e.step ?? 0,
    tasks: e.tasks,
    innerSteps: [...(e.innerSteps ?? [])],
    preLoss: e.preLoss ?? 0,
    postLoss: [...(e.postLoss ?? [])],
    ...(accuracy ? { accuracy: accuracy.value } : {}),
    ...(ci95 ? { ci95: ci95.value } : {}),
    ...(lossCi95 ? { lossCi95: lossCi95.value } : {}),
    ...(isReturnEval(e) ? returnEvalJson(e) : {}),
  };
}

/** A run record as plain JSON (state by name, spec parsed). */
export function recordJson(r: metaloop.IRunRecord): Record<string, unknown> {
  let spec: unknown = null;
  try {
    spec = r.specJson ? JSON.parse(r.specJson) : null;
  } catch {
    spec = r.specJson;
  }
  return {
    runId: r.runId,
    name: r.name,
    state: stateFromProto(r.state),
    step: r.step ?? 0,
    steps: r.steps ?? 0,
    preLoss: r.preLoss ?? 0,
    postLoss: r.postLoss ?? 0,
    // Meta-RL runs: the meta-train figures are returns (the losses are unused).
    ...(r.rl ? { rl: true, preReturn: r.preReturn ?? 0, postReturn: r.postReturn ?? 0 } : {}),
    lastEval: evalJson(r.lastEval),
    error: r.error || null,
    checkpointStep: r.checkpointStep ?? 0,
    stepsPerSec: r.stepsPerSec ?? 0,
    tasksPerSec: r.tasksPerSec ?? 0,
    seconds: r.seconds ?? 0,
    paramsSha256: r.paramsSha256 ?? '',
    createdMs: r.createdMs ?? 0,
    startedMs: r.startedMs ?? 0,
    updatedMs: r.updatedMs ?? 0,
    finishedMs: r.finishedMs ?? 0,
    priority: r.priority ?? 0,
    // Reliability counters of the run (issue 5): redelivered results, re-published and speculative
    // shards, rejected results by reason, staleness of accepted results (async mode).
    redeliveries: r.redeliveries ?? 0,
    reissued: r.reissued ?? 0,
    speculative: r.speculative ?? 0,
    rejected: { ...(r.rejected ?? {}) },
    staleness: { mean: r.stalenessMean ?? 0, max: r.stalenessMax ?? 0 },
    // The evaluation in flight: held-out tasks done of its total (null when not evaluating).
    evaluating: r.evalTasks ? { tasksDone: r.evalTasksDone ?? 0, tasks: r.evalTasks } : null,
    spec,
  };
}

const stepsWord = (k: number | undefined) => `${k ?? '?'} step${k === 1 ? '' : 's'}`;

/** `61.2% ± 1.1` (accuracy as a percentage, its 95% CI in points). */
export function accuracyText(acc: number, ci: number | undefined): string {
  return `${(acc * 100).toFixed(1)}%${ci !== undefined && ci > 0 ? ` ± ${(ci * 100).toFixed(1)}` : ''}`;
}

/** Train losses, or nothing before the first step (a `0 -> 0` there would be a lie). */
function trainText(r: metaloop.IRunRecord): string {
  if (r.rl) return trainReturnText(r);
  return (r.step ?? 0) > 0 ? `${num(r.preLoss)} -> ${num(r.postLoss)}` : '- (no step yet)';
}

/** Every number labelled: `at step 500 on 100 tasks: loss 1.37 before adaptation, 0.52 after 1 step; accuracy 61.2% ± 1.1 after 1 step`. */
function evalText(e: metaloop.IEvalSummary | null | undefined): string {
  if (!e || !e.tasks) return '';
  if (isReturnEval(e)) return returnEvalText(e);
  const steps = e.innerSteps ?? [];
  const ci = e.lossCi95 ?? [];
  const post = (e.postLoss ?? []).map((l, i) => `${num(l)}${ci[i] ? ` ± ${num(ci[i], 2)}` : ''} after ${stepsWord(steps[i])}`).join(', ');
  const acc = (e.accuracy ?? []).map((a, i) => `${accuracyText(a, e.ci95?.[i])} after ${stepsWord(steps[i])}`).join(', ');
  return `at step ${e.step ?? 0} on ${e.tasks} tasks: loss ${num(e.preLoss)} before adaptation, ${post}${acc ? `; accuracy ${acc}` : ''}`;
}

/** The last evaluation in a few labelled words: `eval at step 500: accuracy 61.2% ± 1.1 after 10 steps` (else the loss). */
export function evalBrief(e: metaloop.IEvalSummary | null | undefined): string {
  if (!e || !e.tasks) return '';
  if (isReturnEval(e)) return returnEvalBrief(e);
  const k = (e.innerSteps ?? []).length - 1;
  const K = stepsWord(e.innerSteps?.[k]);
  const acc = e.accuracy?.[k];
  if (acc !== undefined) return `eval at step ${e.step ?? 0}: accuracy ${accuracyText(acc, e.ci95?.[k])} after ${K}`;
  const ci = e.lossCi95?.[k];
  return `eval at step ${e.step ?? 0}: loss ${num(e.postLoss?.[k])}${ci ? ` ± ${num(ci, 2)}` : ''} after ${K}`;
}

/**
 * `evaluating 240/600 held-out tasks…` while the run evaluates (the record's progress of the
 * evaluation in flight; before the coordinator has written one — its step is an evaluation step,
 * the final one included, and that evaluation has not come yet — `evaluating 600 held-out
 * tasks…`), else ''.
 */
export function evaluatingText(r: metaloop.IRunRecord): string {
  if (stateFromProto(r.state) !== 'running') return '';
  if (r.evalTasks) return `evaluating ${r.evalTasksDone ?? 0}/${r.evalTasks} held-out tasks…`;
  if (!r.specJson) return '';
  let spec: { eval?: { every?: number; tasks?: number } };
  try {
    spec = JSON.parse(r.specJson) as typeof spec;
  } catch {
    return '';
  }
  const step = r.step ?? 0;
  const every = spec.eval?.every ?? 0;
  const due = step > 0 && (step === r.steps || (every > 0 && step % every === 0));
  if (!due || (r.lastEval?.tasks && r.lastEval.step === step)) return '';
  return `evaluating ${spec.eval?.tasks ?? '?'} held-out tasks…`;
}

/** What the meta-train figures are: `train return` (meta-RL) or `train loss`. */
export const trainWord = (r: metaloop.IRunRecord) => (r.rl ? 'train return' : 'train loss');

/** One progress line: step, speed, meta-train loss (or return) pre -> post, last eval. */
export function progressLine(r: metaloop.IRunRecord): string {
  const parts = [
    `[${r.runId}] ${stateFromProto(r.state)}`,
    `step ${r.step ?? 0}/${r.steps ?? 0}`,
    `${num(r.stepsPerSec)} steps/s`,
    `${trainWord(r)} ${trainText(r)}`,
  ];
  const ev = evalBrief(r.lastEval);
  if (ev) parts.push(ev);
  const evaluating = evaluatingText(r);
  if (evaluating) parts.push(evaluating);
  return parts.join('  ');
}

/** The JSON summary of `metaloop local --json` (the last line it prints). */
export function summaryJson(r: metaloop.IRunRecord): Record<string, unknown> {
  const e = evalJson(r.lastEval);
  return {
    runId: r.runId,
    status: stateFromProto(r.state),
    steps: r.step ?? 0,
    seconds: Number((r.seconds ?? 0).toFixed(3)),
    metaStepsPerSec: Number((r.stepsPerSec ?? 0).toFixed(3)),
    tasksPerSec: Number((r.tasksPerSec ?? 0).toFixed(3)),
    // accuracy: [a1, aK] (classification); ci95: [c1, cK] of accuracy, or of postLoss for regression.
    eval: e && {
      tasks: e.tasks,
      innerSteps: e.innerSteps,
      preLoss: e.preLoss,
      postLoss: e.postLoss,
      ...(e.accuracy ? { accuracy: e.accuracy } : {}),
      ...(e.ci95 ? { ci95: e.ci95 } : {}),
      ...(e.lossCi95 ? { lossCi95: e.lossCi95 } : {}),
      ...(e.postReturn ? { preReturn: e.preReturn, postReturn: e.postReturn, returnCi95: e.returnCi95, gain: e.gain, gainCi95: e.gainCi95 } : {}),
    },
    ...(r.error ? { error: r.error } : {}),
  };
}

/** Human summary lines at the end of a run. */
export function summaryLines(r: metaloop.IRunRecord): string[] {
  const lines = [
    `run ${r.runId} ${stateFromProto(r.state)}: ${r.step ?? 0}/${r.steps ?? 0} meta-steps in ${(r.seconds ?? 0).toFixed(1)} s ` +
      `(${num(r.stepsPerSec)} steps/s, ${num(r.tasksPerSec)} tasks/s while training; evaluations excluded)`,
  ];
  const e = r.lastEval;
  if (r.rl) lines.push(...returnSummaryLines(r));
  else lines.push(`meta-train loss (last step): ${num(r.preLoss)} before adaptation -> ${num(r.postLoss)} after`);
  if (e && e.tasks && !isReturnEval(e)) {
    const steps = e.innerSteps ?? [];
    const after = (i: number) => `after ${steps[i]} step${steps[i] === 1 ? '' : 's'}`;
    const pm = (ci: readonly number[] | null | undefined, i: number) => (ci?.length ? ` ± ${num(ci[i], 2)}` : '');
    const acc = e.accuracy ?? [];
    const post = (e.postLoss ?? []).map((l, i) => `${num(l, 4)}${pm(e.lossCi95, i)} ${after(i)}`);
    lines.push(`held-out query loss on ${e.tasks} tasks at step ${e.step}: ${num(e.preLoss, 4)} before adaptation, ${post.join(', ')}`);
    if (acc.length) {
      lines.push(`held-out accuracy (mean ± 95% CI): ${acc.map((a, i) => `${num(a, 4)}${pm(e.ci95, i)} ${after(i)}`).join(', ')}`);
    }
  }
  if (r.error) lines.push(`error: ${r.error}`);
  if (r.paramsSha256) lines.push(`params sha256: ${r.paramsSha256}`);
  return lines;
}

/** A run record as a few `key: value` lines. */
export function statusLines(r: metaloop.IRunRecord): string[] {
  const j = recordJson(r);
  const lines = [
    `run:        ${j.runId}`,
    `state:      ${j.state}`,
    `step:       ${j.step}/${j.steps}`,
    r.rl ? `train return: ${trainText(r)} (mean episode return before -> after adaptation, last step)` : `train loss: ${trainText(r)} (query loss before -> after adaptation, last step)`,
    `speed:      ${num(r.stepsPerSec)} steps/s, ${num(r.tasksPerSec)} tasks/s, ${(r.seconds ?? 0).toFixed(1)} s running`,
  ];
  const evaluating = evaluatingText(r);
  if (evaluating) lines.push(`now:        ${evaluating}`);
  const ev = evalText(r.lastEval);
  if (ev) lines.push(`last eval:  ${ev}`);
  if (r.checkpointStep) lines.push(`checkpoint: step ${r.checkpointStep}`);
  if (r.error) lines.push(`error:      ${r.error}`);
  if (r.paramsSha256) lines.push(`params:     sha256 ${r.paramsSha256}`);
  return lines;
}

/** Runs as an aligned table. */
export function listTable(runs: readonly metaloop.IRunRecord[]): string[] {
  // Meta-RL runs (returns, not losses) get their own columns when the list has any.
  const anyRl = runs.some((r) => r.rl);
  const rows = [['RUN', 'STATE', 'STEP', 'TRAIN LOSS', 'EVAL LOSS', 'EVAL ACCURACY', ...(anyRl ? ['TRAIN RETURN', 'EVAL RETURN'] : []), 'CREATED']];
  for (const r of runs) {
    const e = r.lastEval?.tasks ? r.lastEval : null;
    const k = (e?.innerSteps ?? []).length - 1;
    const acc = e?.accuracy?.[k];
    const rl = !!r.rl;
    const started = (r.step ?? 0) > 0;
    rows.push([
      r.runId ?? '',
      stateFromProto(r.state),
      `${r.step ?? 0}/${r.steps ?? 0}`,
      started && !rl ? num(r.postLoss) : '-',
      e && !rl ? `${num(e.postLoss?.[k])} @${e.step} (${stepsWord(e.innerSteps?.[k])})` : '-',
      e && acc !== undefined ? accuracyText(acc, e.ci95?.[k]) : '-',
      ...(anyRl
        ? [started && rl ? num(r.postReturn) : '-', e && rl ? `${num(e.postReturn?.[k])} @${e.step} (${stepsWord(e.innerSteps?.[k])})` : '-']
        : []),
      r.createdMs ? new Date(r.createdMs).toISOString().replace('T', ' ').slice(0, 19) : '-',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
}
