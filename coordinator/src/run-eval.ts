/**
 * One held-out evaluation of θ_t for RunLoop: its round (the same held-out tasks every time,
 * run-shards.ts) issued through the RoundBook, its progress (held-out tasks with an accepted
 * result, of the total) reported as shards are accepted, and its summary. Progress is reported
 * when the evaluation starts (0 of N), when its last shard is accepted (N of N) and in between at
 * most once every `progressMs`; RunLoop turns each report into a record write and a
 * KIND_EVAL_PROGRESS event, as it does for training steps.
 */
import type { Logger, metaloop, RunSpec, TensorSpec } from '@metaloop/shared';
import { evalSummary } from './run-state.js';
import type { RunClock } from './run-report.js';
import type { RoundBook } from './round-book.js';
import { evalRound, type RoundPlan } from './run-shards.js';

export interface EvalProgress {
  /** Held-out tasks whose shard has an accepted result. */
  readonly done: number;
  /** Held-out tasks of the evaluation. */
  readonly total: number;
}

export interface EvaluationOptions {
  readonly runId: string;
  readonly spec: RunSpec;
  readonly layout: TensorSpec[];
  /** The step evaluated (θ_step). */
  readonly step: number;
  readonly logger: Logger;
  /** Called with the progress (see the file comment for when). */
  readonly report: (progress: EvalProgress) => void;
  /** Least time between two reports in between the first and the last. Default 250. */
  readonly progressMs?: number;
}

/** Default least time between two progress reports of one evaluation. */
export const EVAL_PROGRESS_MS = 250;

export class Evaluation {
  private readonly plan: RoundPlan;
  private readonly sizes: readonly number[];
  private readonly counted = new Set<number>();
  private doneTasks = 0;
  private lastReportMs = 0;
  readonly total: number;

  constructor(private readonly o: EvaluationOptions) {
    this.plan = evalRound(o.runId, o.spec, o.layout, o.step);
    this.sizes = this.plan.collector.options.shardTasks;
    this.total = this.sizes.reduce((a, b) => a + b, 0);
  }

  get progress(): EvalProgress {
    return { done: this.doneTasks, total: this.total };
  }

  /** A result of shard `shard` of this evaluation was accepted (each shard counts once). */
  accepted(shard: number): void {
    if (this.counted.has(shard) || this.sizes[shard] === undefined) return;
    this.counted.add(shard);
    this.doneTasks += this.sizes[shard];
    const now = Date.now();
    if (this.doneTasks === this.total || now - this.lastReportMs >= (this.o.progressMs ?? EVAL_PROGRESS_MS)) this.report(now);
  }

  private report(now = Date.now()): void {
    this.lastReportMs = now;
    this.o.report(this.progress);
  }

  /** Issue the round, wait for every shard, return the summary (time counted in `clock` as evaluation). */
  async run(rounds: RoundBook, clock: RunClock): Promise<metaloop.IEvalSummary> {
    const { step, spec, runId } = this.o;
    const started = Date.now();
    clock.beginEvaluation();
    this.report(started);
    const pending = rounds.start(this.plan);
    try {
      await rounds.complete(pending);
    } finally {
      clock.endEvaluation();
    }
    const summary = evalSummary(step, spec.eval.tasks, pending.collector.evalSums());
    this.o.logger.info('evaluation', {
      run: runId,
      step,
      ...(summary.postReturn?.length
        ? { preReturn: summary.preReturn, postReturn: summary.postReturn, gain: summary.gain, gainCi95: summary.gainCi95 }
        : { preLoss: summary.preLoss, postLoss: summary.postLoss }),
      ...(summary.accuracy?.length ? { accuracy: summary.accuracy } : {}),
      ci95: summary.ci95,
      ms: Date.now() - started,
    });
    return summary;
  }
}
