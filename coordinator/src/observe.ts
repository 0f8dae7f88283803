/**
 * Coordinator instrumentation: turns what the coordinator does (runs starting and changing state,
 * shards published, results accepted or rejected, meta-steps, evaluations, checkpoints) and the
 * worker heartbeats it hears into the Prometheus metrics of @metaloop/shared. The coordinator and
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
  type Subjects,
  type Transport,
} from '@metaloop/shared';
import type { RejectReason } from './aggregator.js';
import type { RunStateName } from './run-state.js';

/** What the coordinator reports as it works (all optional to call; all no-throw). */
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
  stepDone(runId: string, s: { step: number; seconds: number; aggregationSeconds: number; updateSeconds: number; preLoss: number; postLoss: number }): void;
  evaluated(runId: string, summary: metaloop.IEvalSummary): void;
  checkpointed(runId: string): void;
}

/** Label used for results that name no known run. */
export const UNKNOWN_RUN_LABEL = '_unknown';

export interface CoordinatorObservabilityOptions {
  readonly registry?: MetricsRegistry;
  readonly logger?: Logger;
  /** A worker counts as live this long after its last heartbeat. Default 15000. */
  readonly liveWindowMs?: number;
}

export class CoordinatorObservability implements RunObserver {
  readonly registry: MetricsRegistry;
  readonly metrics: CoordinatorMetrics;
  private readonly log: Logger;
  private readonly liveWindowMs: number;
  private readonly lastSeen = new Map<string, number>();
  private readonly states = new Map<string, RunStateLabel>();
  private heartbeats: Closer | null = null;
  private readonly stateListeners = new Set<(runId: string, state: RunStateName) => void>();
  private sweepTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: CoordinatorObservabilityOptions = {}) {
    this.registry = options.registry ?? new MetricsRegistry();
    this.metrics = createCoordinatorMetrics(this.registry);
    this.log = options.logger ?? silentLogger;
    this.liveWindowMs = options.liveWindowMs ?? 15_000;
  }

  /** Starts counting live workers from their heartbeats; the returned Closer (or `close()`) stops. */
  watchHeartbeats(transport: Transport, subj: Subjects): Closer {
    const closer: Closer = { close: () => this.close() };
    if (this.heartbeats) return closer;
    this.heartbeats = transport.subscribe(subj.heartbeat(), (data) => {
      try {
        const hb = metaloop.Heartbeat.decode(data);
        if (!hb.workerId) return;
        if (hb.state === 'draining') this.lastSeen.delete(hb.workerId);
        else this.lastSeen.set(hb.workerId, Date.now());
        this.sweep();
      } catch (err) {
        this.log.debug('bad heartbeat ignored', { error: String(err) });
      }
    });
    this.sweepTimer = setInterval(() => this.sweep(), 1000);
    this.sweepTimer.unref?.();
    return closer;
  }

  /** Workers heard from within the liveness window. */
  liveWorkers(): number {
    this.sweep();
    return this.lastSeen.size;
  }

  private sweep(): void {
    const oldest = Date.now() - this.liveWindowMs;
    for (const [id, at] of this.lastSeen) if (at < oldest) this.lastSeen.delete(id);
    this.metrics.liveWorkers.set(this.lastSeen.size);
  }

  /** Stops watching heartbeats (idempotent); the metrics keep their last values. */
  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    const h = this.heartbeats;
    this.heartbeats = null;
    await h?.close().catch(() => {});
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

  stepDone(runId: string, s: { step: number; seconds: number; aggregationSeconds: number; updateSeconds: number; preLoss: number; postLoss: number }): void {
    this.guard(() => {
      this.metrics.recordStep(runId, { step: s.step, seconds: s.seconds, lossPre: s.preLoss, lossPost: s.postLoss });
      this.metrics.aggregationDuration.observe({ run: runId }, s.aggregationSeconds);
      this.metrics.outerUpdateDuration.observe({ run: runId }, s.updateSeconds);
    });
  }

  evaluated(runId: string, summary: metaloop.IEvalSummary): void {
    this.guard(() => {
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
