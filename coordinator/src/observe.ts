/**
 * Coordinator instrumentation: turns what the coordinator does (runs starting and changing state,
 * shards published, results accepted or rejected, meta-steps, evaluations, checkpoints) and its
 * live-worker view (workers.ts) into the Prometheus metrics of @metaloop/shared. The coordinator and
 * its run loops call the `RunObserver` methods; everything here is cheap and never throws.
 */
import {
  createCoordinatorMetrics,
  metaloop,
  MetricsRegistry,
  silentLogger,
  type Closer,
  type CoordinatorMetrics,
  type Logger,
  type RunSpec,
  type RunStateLabel,
} from '@metaloop/shared';
import type { RejectReason } from './result.js';
import type { RunStateName } from './run-state.js';
import type { WorkerView } from './workers.js';

/** What the coordinator reports as it works (all optional to call; all no-throw). */
/** The figures of one completed meta-step. */
export interface StepFigures {
  readonly step: number;
  readonly seconds: number;
  readonly aggregationSeconds: number;
  readonly updateSeconds: number;
  readonly preLoss: number;
  readonly postLoss: number;
  /** Meta-RL: mean returns of θ's and θ′'s rollouts (then the losses are unused). */
  readonly returns?: { readonly pre: number; readonly post: number };
}

export interface RunObserver {
  /** A run loop starts (fresh or resumed at `step`). */
  runStarted(runId: string, spec: RunSpec, step: number, paramCount: number): void;
  runState(runId: string, state: RunStateName): void;
  /** A shard went to the work queue; attempt 0 is its first issue, >0 a re-issue. */
  shardPublished(runId: string, attempt: number): void;
  /** A speculative copy of a straggling shard went out (the first result wins). */
  shardSpeculative?(runId: string): void;
  /** An accepted result came from a redelivered work item (a lease expired, e.g. its worker died). */
  resultRedelivered?(runId: string): void;
  /** An accepted result; `train` results add their tasks to metaloop_tasks_total. */
  resultAccepted(runId: string, r: { tasks: number; staleness: number; train: boolean }): void;
  /** `runId` is undefined when the result named no active or known run (keeps labels bounded). */
  resultRejected(runId: string | undefined, reason: RejectReason): void;
  stepDone(runId: string, s: StepFigures): void;
  evaluated(runId: string, summary: metaloop.IEvalSummary): void;
  checkpointed(runId: string): void;
}

/** Label used for results that name no known run. */
export const UNKNOWN_RUN_LABEL = '_unknown';

export interface CoordinatorObservabilityOptions {
  readonly registry?: MetricsRegistry;
  readonly logger?: Logger;
}

export class CoordinatorObservability implements RunObserver {
  readonly registry: MetricsRegistry;
  readonly metrics: CoordinatorMetrics;
  private readonly log: Logger;
  private readonly states = new Map<string, RunStateLabel>();
  private readonly stateListeners = new Set<(runId: string, state: RunStateName) => void>();
  /** The coordinator's live-worker view the `metaloop_live_workers` gauge follows. */
  private workers: WorkerView | null = null;
  private unwatch: (() => void) | null = null;

  constructor(options: CoordinatorObservabilityOptions = {}) {
    this.registry = options.registry ?? new MetricsRegistry();
    this.metrics = createCoordinatorMetrics(this.registry);
    this.log = options.logger ?? silentLogger;
  }

  /**
   * Keeps `metaloop_live_workers` at the number of live workers of `view` (the same view that
   * answers the `workers` API verb); the returned Closer (or `close()`) stops following it.
   */
  watchWorkers(view: WorkerView): Closer {
    this.unwatch?.();
    this.workers = view;
    this.unwatch = view.onChange((live) => this.guard(() => this.metrics.liveWorkers.set(live)));
    this.guard(() => this.metrics.liveWorkers.set(view.count()));
    return { close: () => this.close() };
  }

  /** Live workers of the watched view (0 before watchWorkers). */
  liveWorkers(): number {
    return this.workers?.count() ?? 0;
  }

  /** Stops following the worker view (idempotent); the metrics keep their last values. */
  close(): Promise<void> {
    this.unwatch?.();
    this.unwatch = null;
    return Promise.resolve();
  }

  // ---- RunObserver ----

  runStarted(runId: string, spec: RunSpec, step: number, paramCount: number): void {
    this.guard(() => {
      this.metrics.initRun(runId, {
        targetSteps: spec.outer.steps,
        step,
        info: { name: spec.name, algorithm: spec.algorithm.kind, family: spec.task.family, model: spec.model.kind },
      });
      this.metrics.parameterBytes.set({ run: runId }, paramCount * 4);
    });
  }

  runState(runId: string, state: RunStateName): void {
    this.guard(() => {
      this.states.set(runId, state);
      this.metrics.setRunState(runId, state);
      const counts: Partial<Record<RunStateLabel, number>> = {};
      for (const s of this.states.values()) counts[s] = (counts[s] ?? 0) + 1;
      this.metrics.setRunCounts(counts);
    });
    for (const listener of this.stateListeners) this.guard(() => listener(runId, state));
  }

  /** Calls `listener` after every run state change (the Kubernetes scaler re-checks the demand); returns the unsubscribe. */
  onRunState(listener: (runId: string, state: RunStateName) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  shardPublished(runId: string, attempt: number): void {
    this.guard(() => (attempt === 0 ? this.metrics.shardsDispatched : this.metrics.shardsRedelivered).inc({ run: runId }));
  }

  shardSpeculative(runId: string): void {
    this.guard(() => this.metrics.shardsSpeculative.inc({ run: runId }));
  }

  resultRedelivered(runId: string): void {
    this.guard(() => this.metrics.shardsRedelivered.inc({ run: runId }));
  }

  resultAccepted(runId: string, r: { tasks: number; staleness: number; train: boolean }): void {
    this.guard(() => {
      this.metrics.shardsCompleted.inc({ run: runId });
      this.metrics.staleness.observe({ run: runId }, r.staleness);
      if (r.train) this.metrics.tasks.inc({ run: runId }, r.tasks);
    });
  }

  resultRejected(runId: string | undefined, reason: RejectReason): void {
    this.guard(() => this.metrics.recordRejected(runId ?? UNKNOWN_RUN_LABEL, reason));
  }

  stepDone(runId: string, s: StepFigures): void {
    this.guard(() => {
      // A meta-RL step's figures are returns, never shown as a loss.
      const figures = s.returns ? { returnPre: s.returns.pre, returnPost: s.returns.post } : { lossPre: s.preLoss, lossPost: s.postLoss };
      this.metrics.recordStep(runId, { step: s.step, seconds: s.seconds, ...figures });
      this.metrics.aggregationDuration.observe({ run: runId }, s.aggregationSeconds);
      this.metrics.outerUpdateDuration.observe({ run: runId }, s.updateSeconds);
    });
  }

  evaluated(runId: string, summary: metaloop.IEvalSummary): void {
    this.guard(() => {
      if (summary.postReturn?.length) {
        this.metrics.recordEvalReturn(runId, { innerSteps: 0, ret: summary.preReturn ?? 0 });
        (summary.innerSteps ?? []).forEach((k, i) => this.metrics.recordEvalReturn(runId, { innerSteps: k, ret: summary.postReturn![i]!, ...(summary.gain?.[i] !== undefined ? { gain: summary.gain[i] } : {}) }));
        return;
      }
      if (summary.preLoss !== undefined && summary.preLoss !== null) this.metrics.recordEval(runId, { innerSteps: 0, loss: summary.preLoss });
      const steps = summary.innerSteps ?? [];
      steps.forEach((k, i) => {
        const loss = summary.postLoss?.[i];
        if (loss === undefined) return;
        const accuracy = summary.accuracy?.[i];
        this.metrics.recordEval(runId, { innerSteps: k, loss, ...(accuracy !== undefined ? { accuracy } : {}) });
      });
    });
  }

  checkpointed(runId: string): void {
    this.guard(() => this.metrics.recordCheckpoint(runId));
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.warn('metrics update failed', { error: String(err) });
    }
  }
}
