/**
 * The per-step history of a run: meta-train losses of every step, every evaluation and every
 * checkpoint, kept by the run loop and stored durably beside the checkpoints
 * (`Transport.putHistory`), so `metaloop report` can plot a run long after it ended.
 *
 * Stored as compact columnar JSON (version 1). A resumed run truncates the history to its
 * checkpoint's step; the re-computed steps are appended again (with the same values: determinism).
 */
import type { HistoryEval, HistoryJson, HistoryState, HistoryStateName, metaloop, RunStateName } from '@metaloop/shared';
import { StoredDataError } from './errors.js';

export { HISTORY_STATES, type HistoryEval, type HistoryJson, type HistoryState, type HistoryStateName } from '@metaloop/shared';

const round = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(7)) : x);

export class RunHistory {
  private steps: number[] = [];
  private pre: number[] = [];
  private post: number[] = [];
  private times: number[] = [];
  /** Meta-RL runs only (null otherwise). */
  private preRet: number[] | null = null;
  private postRet: number[] | null = null;
  private evals: HistoryEval[] = [];
  private checkpoints: { step: number; timeMs: number }[] = [];
  private states: HistoryState[] = [];
  private dirty = false;

  constructor(readonly runId: string) {}

  static fromJson(json: HistoryJson): RunHistory {
    const h = new RunHistory(json.runId);
    h.steps = [...json.steps];
    h.pre = [...json.preLoss];
    h.post = [...json.postLoss];
    h.times = [...json.timeMs];
    if (json.preReturn && json.postReturn) {
      h.preRet = [...json.preReturn];
      h.postRet = [...json.postReturn];
    }
    h.evals = json.evals.map((e) => ({ ...e }));
    h.checkpoints = json.checkpoints.map((c) => ({ ...c }));
    h.states = (json.states ?? []).map((c) => ({ ...c }));
    return h;
  }

  static decode(bytes: Uint8Array): RunHistory {
    const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as HistoryJson;
    if (json.version !== 1 || !Array.isArray(json.steps)) throw new StoredDataError('history', 'unsupported run history format');
    return RunHistory.fromJson(json);
  }

  /** True when something was added since the last `encode()`. */
  get changed(): boolean {
    return this.dirty;
  }

  get length(): number {
    return this.steps.length;
  }

  /**
   * Record a change of the run's state from `from` to `to` at `step`: `pending` is `submitted`,
   * `running` after `paused` is `resumed`. State changes are kept by `truncate` (they happened).
   */
  addState(from: RunStateName | null, to: RunStateName, step: number, timeMs = Date.now()): void {
    const state: HistoryStateName = to === 'pending' ? 'submitted' : to === 'running' && from === 'paused' ? 'resumed' : to;
    this.states.push({ step, state, timeMs: Math.round(timeMs) });
    this.dirty = true;
  }

  /** Forget everything after `step` (a resume from the checkpoint at `step`). */
  truncate(step: number): void {
    let n = this.steps.length;
    while (n > 0 && this.steps[n - 1]! > step) n--;
    this.steps.length = this.pre.length = this.post.length = this.times.length = n;
    if (this.preRet && this.postRet) this.preRet.length = this.postRet.length = n;
    this.evals = this.evals.filter((e) => e.step <= step);
    this.checkpoints = this.checkpoints.filter((c) => c.step <= step);
    this.dirty = true;
  }

  /** `returns`: a meta-RL run's step (every step of such a run has them). */
  addStep(step: number, preLoss: number, postLoss: number, timeMs = Date.now(), returns?: { pre: number; post: number }): void {
    this.steps.push(step);
    this.pre.push(round(preLoss));
    this.post.push(round(postLoss));
    if (returns) {
      (this.preRet ??= []).push(round(returns.pre));
      (this.postRet ??= []).push(round(returns.post));
    }
    this.times.push(Math.round(timeMs));
    this.dirty = true;
  }

  addEval(e: metaloop.IEvalSummary, timeMs = Date.now()): void {
    this.evals.push({
      step: e.step ?? 0,
      tasks: e.tasks ?? 0,
      innerSteps: [...(e.innerSteps ?? [])],
      preLoss: round(e.preLoss ?? 0),
      postLoss: (e.postLoss ?? []).map(round),
      accuracy: (e.accuracy ?? []).map(round),
      ci95: (e.ci95 ?? []).map(round),
      lossCi95: (e.lossCi95 ?? []).map(round),
      ...(e.preLossCi95 ? { preLossCi95: round(e.preLossCi95) } : {}),
      ...(e.postReturn?.length
        ? {
            preReturn: round(e.preReturn ?? 0),
            postReturn: e.postReturn.map(round),
            preReturnCi95: round(e.preReturnCi95 ?? 0),
            returnCi95: (e.returnCi95 ?? []).map(round),
            gain: (e.gain ?? []).map(round),
            gainCi95: (e.gainCi95 ?? []).map(round),
          }
        : {}),
      timeMs: Math.round(timeMs),
    });
    this.dirty = true;
  }

  addCheckpoint(step: number, timeMs = Date.now()): void {
    this.checkpoints.push({ step, timeMs: Math.round(timeMs) });
    this.dirty = true;
  }

  toJson(): HistoryJson {
    return {
      version: 1,
      runId: this.runId,
      steps: [...this.steps],
      preLoss: [...this.pre],
      postLoss: [...this.post],
      timeMs: [...this.times],
      evals: this.evals.map((e) => ({ ...e })),
      checkpoints: this.checkpoints.map((c) => ({ ...c })),
      states: this.states.map((c) => ({ ...c })),
      ...(this.preRet && this.postRet ? { preReturn: [...this.preRet], postReturn: [...this.postRet] } : {}),
    };
  }

  encode(): Uint8Array {
    this.dirty = false;
    return new Uint8Array(Buffer.from(JSON.stringify(this.toJson()), 'utf8'));
  }
}

/** The metric an evaluation is judged by (higher is better): final return (meta-RL), else final accuracy when present, else −final loss. */
export function evalScore(e: Pick<HistoryEval, 'postLoss' | 'accuracy' | 'postReturn'>): number {
  const ret = e.postReturn?.[e.postReturn.length - 1];
  if (ret !== undefined) return ret; // meta-RL: the final return (higher is better)
  const acc = e.accuracy[e.accuracy.length - 1];
  if (acc !== undefined) return acc;
  const loss = e.postLoss[e.postLoss.length - 1];
  return loss === undefined ? Number.NEGATIVE_INFINITY : -loss;
}
