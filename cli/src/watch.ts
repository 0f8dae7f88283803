/**
 * Following a run from a terminal (`metaloop watch`, `submit --watch`, `events --follow`): live
 * step events (core NATS `<prefix>.events.<run>`) merged with status polls (events are not
 * durable: a poll fills any gap and notices the end), and the two renderings — a progress bar
 * redrawn in place on a TTY, plain lines otherwise.
 */
import { ConnectionError, isTerminal, metaloop, RequestTimeoutError, stateFromProto, subjects as makeSubjects, type Transport } from '@metaloop/shared';
import { type ApiClient } from '@metaloop/client';
import { accuracyText, evaluatingText, progressLine } from './format.js';
import { isReturnEval, returnEvalCompact, returnEvalJson } from './returns.js';

export interface FollowOptions {
  readonly client: ApiClient;
  readonly transport: Transport;
  readonly prefix: string;
  readonly runId: string;
  /** Every event of the run as it arrives. */
  readonly onEvent?: (event: metaloop.Event) => void;
  /** The merged view after every event or poll. */
  readonly onUpdate?: (view: metaloop.RunRecord) => void;
  /** Status polling period. Default 1000. */
  readonly pollMs?: number;
  /** How long to wait for a lost NATS connection to come back before giving up. Default 30 000. */
  readonly reconnectMs?: number;
  readonly signal?: AbortSignal;
}

/** Follow a run until it has ended; resolves with its final record. */
export async function followRun(o: FollowOptions): Promise<metaloop.RunRecord> {
  const subj = makeSubjects(o.prefix);
  let view: metaloop.RunRecord | null = null;
  let wake = () => {};
  const sub = o.transport.subscribe(subj.events(o.runId), (data) => {
    let ev: metaloop.Event;
    try {
      ev = metaloop.Event.decode(data);
    } catch {
      return;
    }
    o.onEvent?.(ev);
    if (!view) return;
    if ((ev.step ?? 0) < (view.step ?? 0)) return;
    const next = metaloop.RunRecord.create({ ...view, step: ev.step, updatedMs: ev.timestampMs });
    if (ev.kind === metaloop.Event.Kind.KIND_STEP) {
      next.preLoss = ev.preLoss;
      next.postLoss = ev.postLoss;
      if (ev.rl) {
        next.preReturn = ev.preReturn;
        next.postReturn = ev.postReturn;
      }
      next.stepsPerSec = ev.stepsPerSec;
      next.tasksPerSec = ev.tasksPerSec;
    } else if (ev.kind === metaloop.Event.Kind.KIND_EVAL_PROGRESS) {
      next.evalTasksDone = ev.evalTasksDone;
      next.evalTasks = ev.evalTasks;
    } else if (ev.kind === metaloop.Event.Kind.KIND_EVAL && ev.eval) {
      next.lastEval = metaloop.EvalSummary.create(ev.eval);
      next.evalTasksDone = 0;
      next.evalTasks = 0;
    } else if (ev.kind === metaloop.Event.Kind.KIND_CHECKPOINT) {
      next.checkpointStep = ev.step;
    } else if (ev.kind === metaloop.Event.Kind.KIND_STATE) {
      next.state = ev.state;
      if (isTerminal(stateFromProto(ev.state))) wake();
    }
    view = next;
    o.onUpdate?.(view);
  });
  let lostSince = 0;
  try {
    for (;;) {
      o.signal?.throwIfAborted();
      let rec: metaloop.RunRecord;
      try {
        rec = await o.client.status(o.runId);
        lostSince = 0;
      } catch (err) {
        // NATS (or the coordinator) restarting: the transport reconnects, the coordinator resumes;
        // keep following unless it stays away. The first poll fails at once (nothing followed yet).
        const transient = err instanceof ConnectionError || (err instanceof RequestTimeoutError && view !== null);
        if (!transient) throw err;
        lostSince ||= Date.now();
        const waitMs = o.reconnectMs ?? 30_000;
        if (Date.now() - lostSince >= waitMs) {
          if (err instanceof ConnectionError) {
            throw new ConnectionError(`lost the connection to NATS at ${err.url ?? '?'}: it did not come back within ${Math.round(waitMs / 1000)} s`, err.url, { cause: err });
          }
          throw err;
        }
        await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
        continue;
      }
      // A poll never moves the view backwards (events may be ahead of the stored record).
      view = !view || (rec.step ?? 0) >= (view.step ?? 0) || isTerminal(stateFromProto(rec.state)) ? withEvalProgress(rec, view) : metaloop.RunRecord.create({ ...rec, ...pick(view) });
      o.onUpdate?.(view);
      if (isTerminal(stateFromProto(rec.state))) return rec;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, o.pollMs ?? 1000);
        function done() {
          clearTimeout(timer);
          o.signal?.removeEventListener('abort', done);
          resolve();
        }
        wake = done;
        o.signal?.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    await sub.close();
  }
}

function pick(v: metaloop.RunRecord): Partial<metaloop.IRunRecord> {
  return { step: v.step, preLoss: v.preLoss, postLoss: v.postLoss, preReturn: v.preReturn, postReturn: v.postReturn, stepsPerSec: v.stepsPerSec, tasksPerSec: v.tasksPerSec, lastEval: v.lastEval, checkpointStep: v.checkpointStep, evalTasksDone: v.evalTasksDone, evalTasks: v.evalTasks };
}

/** A polled record, keeping the view's evaluation progress when events have it further along (same evaluation). */
function withEvalProgress(rec: metaloop.RunRecord, view: metaloop.RunRecord | null): metaloop.RunRecord {
  const ahead = view && view.step === rec.step && rec.evalTasks > 0 && view.evalTasks === rec.evalTasks && view.evalTasksDone > rec.evalTasksDone;
  return ahead ? metaloop.RunRecord.create({ ...rec, evalTasksDone: view.evalTasksDone }) : rec;
}

const num = (x: number | null | undefined, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toPrecision(digits));

/** Seconds to go at the current speed, as `1h02m`, `3m05s` or `12s`; '-' when unknown. */
export function etaText(r: metaloop.IRunRecord): string {
  const left = (r.steps ?? 0) - (r.step ?? 0);
  const rate = r.stepsPerSec ?? 0;
  if (left <= 0) return '0s';
  if (!(rate > 0)) return '-';
  const s = Math.round(left / rate);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** One progress-bar line (no newline) at most `width` columns wide. */
export function barLine(r: metaloop.IRunRecord, width = 100): string {
  const steps = r.steps ?? 0;
  const step = r.step ?? 0;
  const frac = steps > 0 ? Math.min(1, step / steps) : 0;
  const e = r.lastEval;
  const k = (e?.innerSteps ?? []).length - 1;
  const acc = e?.accuracy?.[k];
  // Every figure named: `eval@500 acc 61.2%±1.1`, `eval@500 loss 0.31`.
  const figure = () => (isReturnEval(e) ? returnEvalCompact(e!) : acc !== undefined ? `acc ${accuracyText(acc, e?.ci95?.[k]).replace(' ± ', '±')}` : `loss ${num(e?.postLoss?.[k])}`);
  const evalText = e && e.tasks ? `  eval@${e.step} ${figure()}` : '';
  const train = r.rl ? `train return ${step > 0 ? `${num(r.preReturn)}→${num(r.postReturn)}` : '-'}` : `train loss ${step > 0 ? `${num(r.preLoss)}→${num(r.postLoss)}` : '-'}`;
  const state = stateFromProto(r.state);
  const tail =
    ` ${String(Math.floor(frac * 100)).padStart(3)}% ${step}/${steps}  ${num(r.tasksPerSec)} tasks/s` +
    `  ${train}${evalText}${state === 'running' ? `  ETA ${etaText(r)}` : ''}  ${evaluatingText(r) || state}`;
  // Room for an eval figure is kept from the start, so the bar does not shrink when one arrives.
  const barWidth = Math.max(10, Math.min(40, width - tail.length - (evalText ? 0 : 18) - 2));
  const full = Math.round(frac * barWidth);
  return `[${'█'.repeat(full)}${'░'.repeat(barWidth - full)}]${tail}`.slice(0, Math.max(20, width));
}

export interface Renderer {
  update(r: metaloop.RunRecord): void;
  /** Leave the bar (TTY) and stop. */
  end(): void;
}

/** A bar redrawn in place (at most 10 times a second) on a TTY stream. */
export function ttyRenderer(stream: NodeJS.WriteStream): Renderer {
  let last = 0;
  let pending: metaloop.RunRecord | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const draw = () => {
    timer = null;
    if (!pending) return;
    last = Date.now();
    stream.write(`\r\x1b[2K${barLine(pending, (stream.columns || 100) - 1)}`);
  };
  return {
    update(r) {
      pending = r;
      if (timer) return;
      const wait = 100 - (Date.now() - last);
      if (wait <= 0) draw();
      else timer = setTimeout(draw, wait);
    },
    end() {
      if (timer) clearTimeout(timer);
      draw();
      stream.write('\n');
    },
  };
}

/** Plain lines: at most one every `everyMs`, and on every state or evaluation change. */
export function lineRenderer(write: (line: string) => void, everyMs = 5000): Renderer {
  let last = 0;
  let lastState = '';
  let lastEval = -1;
  let latest: metaloop.RunRecord | null = null;
  let printed: metaloop.RunRecord | null = null;
  return {
    update(r) {
      latest = r;
      const state = stateFromProto(r.state);
      const evalStep = r.lastEval?.tasks ? (r.lastEval.step ?? 0) : -1;
      if (Date.now() - last >= everyMs || state !== lastState || evalStep !== lastEval) {
        last = Date.now();
        lastState = state;
        lastEval = evalStep;
        printed = r;
        write(progressLine(r));
      }
    },
    end() {
      // The final state was printed already (from its event): no second, near-identical line.
      if (latest && latest !== printed && stateFromProto(latest.state) !== stateFromProto(printed?.state)) write(progressLine(latest));
    },
  };
}

/** One event as a plain line. */
export function eventLine(ev: metaloop.IEvent): string {
  const t = new Date(ev.timestampMs ?? 0).toISOString().slice(11, 23);
  const head = `${t} ${ev.runId} step ${ev.step ?? 0}`;
  switch (ev.kind) {
    case metaloop.Event.Kind.KIND_STEP:
      // Recorded steps (the history) carry no speed: nothing is printed for it rather than `- steps/s`.
      return `${head} STEP ${ev.rl ? `return ${num(ev.preReturn)} -> ${num(ev.postReturn)}` : `loss ${num(ev.preLoss)} -> ${num(ev.postLoss)}`}${ev.stepsPerSec ? `  ${num(ev.stepsPerSec)} steps/s` : ''}`;
    case metaloop.Event.Kind.KIND_EVAL: {
      const e = ev.eval;
      if (isReturnEval(e)) return `${head} EVAL ${e?.tasks ?? 0} tasks: ${returnEvalCompact(e!, true)}`;
      const post = (e?.postLoss ?? []).map((l, i) => `${num(l)}@${e?.innerSteps?.[i] ?? '?'}`).join(' ');
      const acc = (e?.accuracy ?? []).map((a, i) => `${num(a)}@${e?.innerSteps?.[i] ?? '?'}`).join(' ');
      return `${head} EVAL ${e?.tasks ?? 0} tasks: loss ${num(e?.preLoss)} -> ${post}${acc ? `  accuracy ${acc}` : ''}`;
    }
    case metaloop.Event.Kind.KIND_STATE:
      return `${head} STATE ${ev.message || stateFromProto(ev.state)}`;
    case metaloop.Event.Kind.KIND_CHECKPOINT:
      return `${head} CHECKPOINT ${ev.message ?? ''}`.trimEnd();
    case metaloop.Event.Kind.KIND_EVAL_PROGRESS:
      return `${head} EVALUATING ${ev.evalTasksDone ?? 0}/${ev.evalTasks ?? 0} held-out tasks`;
    default:
      return `${head} ${String(ev.kind)}`;
  }
}

/** One event as JSON (kind and state by name). */
export function eventJson(ev: metaloop.IEvent): Record<string, unknown> {
  const kind = ({ 1: 'step', 2: 'eval', 3: 'state', 4: 'checkpoint', 5: 'eval-progress' } as Record<number, string>)[ev.kind ?? 0] ?? 'unspecified';
  const out: Record<string, unknown> = { runId: ev.runId, kind, step: ev.step ?? 0, timestampMs: ev.timestampMs ?? 0 };
  if (kind === 'step') {
    const figures = ev.rl ? { rl: true, preReturn: ev.preReturn, postReturn: ev.postReturn } : { preLoss: ev.preLoss, postLoss: ev.postLoss };
    Object.assign(out, { ...figures, stepsPerSec: ev.stepsPerSec, tasksPerSec: ev.tasksPerSec });
  }
  if (kind === 'eval-progress') Object.assign(out, { evalTasksDone: ev.evalTasksDone ?? 0, evalTasks: ev.evalTasks ?? 0 });
  if (kind === 'eval' && ev.eval) {
    const e = ev.eval;
    out.eval = isReturnEval(e)
      ? { tasks: e.tasks, innerSteps: e.innerSteps, ...returnEvalJson(e) }
      : { tasks: e.tasks, innerSteps: e.innerSteps, preLoss: e.preLoss, postLoss: e.postLoss, accuracy: e.accuracy ?? [], ci95: e.ci95 ?? [], lossCi95: e.lossCi95 ?? [] };
  }
  // state: the run's state after the change; change: what happened (`resumed`, `submitted`, …).
  if (kind === 'state') Object.assign(out, { state: stateFromProto(ev.state), change: ev.message || stateFromProto(ev.state) });
  else if (ev.message) out.message = ev.message;
  return out;
}
