/**
 * Coordinator metric definitions. Names are in base units with the `metaloop_` prefix, counters end
 * in `_total`, and labels stay bounded: `run`, `reason`, `state`, `phase`, `inner_steps` — never a
 * task id or a shard index. docs/metrics.md lists every name; keep it in step with this file.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Why the coordinator dropped a shard result (the `reason` label of metaloop_results_rejected_total). */
export const REJECT_REASONS = ['stale', 'duplicate', 'malformed', 'non_finite', 'wrong_shape', 'unknown_run', 'worker_error', 'data_refused'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Run states (the `state` label of metaloop_runs and metaloop_run_state), as the coordinator names them. */
export const RUN_STATES = ['pending', 'running', 'paused', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStateLabel = (typeof RUN_STATES)[number];

/** Seconds; from a ~1 ms meta-step on a GPU to a slow Conv4 step on cpu. */
export const STEP_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Seconds; aggregation and optimizer updates are short. */
export const FAST_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Versions behind the newest θ (async mode). */
export const STALENESS_BUCKETS = [0, 1, 2, 3, 4, 8, 16, 32];

export interface RunInfoLabels {
  name: string;
  algorithm: string;
  /** Task family (sinusoid, fewshot-images, synthetic-glyphs). */
  family: string;
  model: string;
}

export interface CoordinatorMetrics {
  readonly registry: Registry;
  readonly metaSteps: Counter<'run'>;
  readonly runStep: Gauge<'run'>;
  readonly runTargetSteps: Gauge<'run'>;
  readonly lastStepTimestamp: Gauge<'run'>;
  readonly stepDuration: Histogram<'run'>;
  readonly metaTrainLoss: Gauge<'run' | 'phase'>;
  readonly evalLoss: Gauge<'run' | 'inner_steps'>;
  readonly evalAccuracy: Gauge<'run' | 'inner_steps'>;
  /** Meta-RL runs report returns (higher is better) instead of losses. */
  readonly metaTrainReturn: Gauge<'run' | 'phase'>;
  readonly evalReturn: Gauge<'run' | 'inner_steps'>;
  readonly evalReturnGain: Gauge<'run' | 'inner_steps'>;
  readonly tasks: Counter<'run'>;
  readonly shardsDispatched: Counter<'run'>;
  readonly shardsCompleted: Counter<'run'>;
  readonly shardsRedelivered: Counter<'run'>;
  readonly shardsSpeculative: Counter<'run'>;
  readonly resultsRejected: Counter<'run' | 'reason'>;
  readonly aggregationDuration: Histogram<'run'>;
  readonly outerUpdateDuration: Histogram<'run'>;
  readonly liveWorkers: Gauge;
  readonly parameterBytes: Gauge<'run'>;
  readonly lastCheckpointTimestamp: Gauge<'run'>;
  readonly checkpoints: Counter<'run'>;
  readonly staleness: Histogram<'run'>;
  readonly runs: Gauge<'state'>;
  readonly runState: Gauge<'run' | 'state'>;
  readonly runInfo: Gauge<'run' | 'name' | 'algorithm' | 'family' | 'model'>;

  /** Creates every per-run series at its zero value so rates and alerts have data from the first scrape. */
  initRun(run: string, opts: { targetSteps: number; info: RunInfoLabels; step?: number; nowMs?: number }): void;
  /** Records one completed meta-step (counter, step gauge, last-step time, duration, train losses). */
  recordStep(run: string, s: { step: number; seconds: number; lossPre?: number; lossPost?: number; returnPre?: number; returnPost?: number; nowMs?: number }): void;
  /** Records an evaluation at `innerSteps` adaptation steps; accuracy only for classification tasks. */
  recordEval(run: string, e: { innerSteps: number; loss: number; accuracy?: number }): void;
  /** Records a meta-RL evaluation's mean return after `innerSteps` steps and its paired gain over 0 steps. */
  recordEvalReturn(run: string, e: { innerSteps: number; ret: number; gain?: number }): void;
  recordRejected(run: string, reason: RejectReason, n?: number): void;
  recordCheckpoint(run: string, nowMs?: number): void;
  /** Sets the state of one run (one-hot metaloop_run_state) — call `setRunCounts` for the totals. */
  setRunState(run: string, state: RunStateLabel): void;
  /** Sets metaloop_runs{state} from the coordinator's run table. */
  setRunCounts(counts: Partial<Record<RunStateLabel, number>>): void;
  /** Drops every series of a run (e.g. after it is deleted), so dead runs do not linger. */
  removeRun(run: string): Promise<void>;
}

export function createCoordinatorMetrics(registry: Registry): CoordinatorMetrics {
  const registers = [registry];
  const run = ['run'] as const;
  const metaSteps = new Counter({ name: 'metaloop_meta_steps_total', help: 'Meta-steps (outer updates) completed.', labelNames: run, registers });
  const runStep = new Gauge({ name: 'metaloop_run_step', help: 'Current outer step (parameter version) of the run.', labelNames: run, registers });
  const runTargetSteps = new Gauge({ name: 'metaloop_run_target_steps', help: 'Outer steps the run will take in total (outer.steps).', labelNames: run, registers });
  const lastStepTimestamp = new Gauge({
    name: 'metaloop_run_last_step_timestamp_seconds',
    help: 'Unix time of the last completed meta-step (the run start before the first step).',
    labelNames: run,
    registers,
  });
  const stepDuration = new Histogram({
    name: 'metaloop_meta_step_duration_seconds',
    help: 'Wall time of one meta-step, from dispatching its shards to publishing the new parameters.',
    labelNames: run,
    buckets: STEP_BUCKETS_SECONDS,
    registers,
  });
  const metaTrainLoss = new Gauge({
    name: 'metaloop_meta_train_loss',
    help: 'Mean meta-train loss of the last meta-step; phase="pre" before inner-loop adaptation, "post" after (query loss).',
    labelNames: ['run', 'phase'] as const,
    registers,
  });
  const evalLoss = new Gauge({
    name: 'metaloop_eval_loss',
    help: 'Mean held-out query loss at the last evaluation, after inner_steps adaptation steps.',
    labelNames: ['run', 'inner_steps'] as const,
    registers,
  });
  const evalAccuracy = new Gauge({
    name: 'metaloop_eval_accuracy_ratio',
    help: 'Held-out query accuracy (0..1) at the last evaluation; classification tasks only.',
    labelNames: ['run', 'inner_steps'] as const,
    registers,
  });
  const metaTrainReturn = new Gauge({
    name: 'metaloop_meta_train_return',
    help: 'Meta-RL: mean episode return of the last meta-step; phase="pre" with θ, "post" with the adapted θ′ (the outer batch).',
    labelNames: ['run', 'phase'] as const,
    registers,
  });
  const evalReturn = new Gauge({
    name: 'metaloop_eval_return',
    help: 'Meta-RL: mean episode return on the held-out tasks at the last evaluation, after inner_steps adaptation steps (0 = before).',
    labelNames: ['run', 'inner_steps'] as const,
    registers,
  });
  const evalReturnGain = new Gauge({
    name: 'metaloop_eval_return_gain',
    help: 'Meta-RL: mean over held-out tasks of (return after inner_steps steps − return before) at the last evaluation.',
    labelNames: ['run', 'inner_steps'] as const,
    registers,
  });
  const tasks = new Counter({ name: 'metaloop_tasks_total', help: 'Tasks whose meta-gradient was accepted into a meta-step.', labelNames: run, registers });
  const shardsDispatched = new Counter({ name: 'metaloop_shards_dispatched_total', help: 'Shards published to the work queue (first issue).', labelNames: run, registers });
  const shardsCompleted = new Counter({ name: 'metaloop_shards_completed_total', help: 'Shard results accepted.', labelNames: run, registers });
  const shardsRedelivered = new Counter({
    name: 'metaloop_shards_redelivered_total',
    help: 'Shards re-issued because their lease expired or their worker died.',
    labelNames: run,
    registers,
  });
  const shardsSpeculative = new Counter({
    name: 'metaloop_shards_speculative_total',
    help: 'Extra copies of slow shards issued speculatively (the first result wins).',
    labelNames: run,
    registers,
  });
  const resultsRejected = new Counter({
    name: 'metaloop_results_rejected_total',
    help: `Shard results dropped, by reason (${REJECT_REASONS.join(', ')}).`,
    labelNames: ['run', 'reason'] as const,
    registers,
  });
  const aggregationDuration = new Histogram({
    name: 'metaloop_aggregation_duration_seconds',
    help: 'Time to sum the accepted shard gradients of one meta-step (in shard order).',
    labelNames: run,
    buckets: FAST_BUCKETS_SECONDS,
    registers,
  });
  const outerUpdateDuration = new Histogram({
    name: 'metaloop_outer_update_duration_seconds',
    help: 'Time of the outer optimizer step of one meta-step.',
    labelNames: run,
    buckets: FAST_BUCKETS_SECONDS,
    registers,
  });
  const liveWorkers = new Gauge({ name: 'metaloop_live_workers', help: 'Workers whose heartbeat arrived within the liveness window.', registers });
  const parameterBytes = new Gauge({ name: 'metaloop_parameter_bytes', help: 'Size of one parameter version (θ) of the run, in bytes.', labelNames: run, registers });
  const lastCheckpointTimestamp = new Gauge({
    name: 'metaloop_last_checkpoint_timestamp_seconds',
    help: 'Unix time of the last checkpoint of the run (the run start before the first one); age = time() - value.',
    labelNames: run,
    registers,
  });
  const checkpoints = new Counter({ name: 'metaloop_checkpoints_total', help: 'Checkpoints written.', labelNames: run, registers });
  const staleness = new Histogram({
    name: 'metaloop_result_staleness_steps',
    help: 'How many versions behind the current θ an accepted result was computed (always 0 in synchronous mode).',
    labelNames: run,
    buckets: STALENESS_BUCKETS,
    registers,
  });
  const runs = new Gauge({ name: 'metaloop_runs', help: 'Runs known to the coordinator, by state.', labelNames: ['state'] as const, registers });
  const runState = new Gauge({
    name: 'metaloop_run_state',
    help: 'One-hot state of each run: 1 for the current state, 0 for the others.',
    labelNames: ['run', 'state'] as const,
    registers,
  });
  const runInfo = new Gauge({
    name: 'metaloop_run_info',
    help: 'Always 1; labels describe the run (name, algorithm, task family, model kind).',
    labelNames: ['run', 'name', 'algorithm', 'family', 'model'] as const,
    registers,
  });
  for (const state of RUN_STATES) runs.set({ state }, 0);
  liveWorkers.set(0);

  /** Metrics whose only label is `run`. */
  const runOnly = [metaSteps, runStep, runTargetSteps, lastStepTimestamp, stepDuration, tasks, shardsDispatched, shardsCompleted,
    shardsRedelivered, shardsSpeculative, aggregationDuration, outerUpdateDuration, parameterBytes, lastCheckpointTimestamp,
    checkpoints, staleness];
  /** Metrics with `run` and more labels. */
  const runAndMore: Removable[] = [metaTrainLoss, evalLoss, evalAccuracy, metaTrainReturn, evalReturn, evalReturnGain, resultsRejected, runState, runInfo];

  const setRunState = (r: string, state: RunStateLabel): void => {
    for (const s of RUN_STATES) runState.set({ run: r, state: s }, s === state ? 1 : 0);
  };

  return {
    registry, metaSteps, runStep, runTargetSteps, lastStepTimestamp, stepDuration, metaTrainLoss, evalLoss, evalAccuracy, tasks,
    metaTrainReturn, evalReturn, evalReturnGain,
    shardsDispatched, shardsCompleted, shardsRedelivered, shardsSpeculative, resultsRejected, aggregationDuration,
    outerUpdateDuration, liveWorkers, parameterBytes, lastCheckpointTimestamp, checkpoints, staleness, runs, runState, runInfo,

    initRun(r, { targetSteps, info, step = 0, nowMs = Date.now() }) {
      for (const c of [metaSteps, tasks, shardsDispatched, shardsCompleted, shardsRedelivered, shardsSpeculative, checkpoints]) c.inc({ run: r }, 0);
      for (const reason of REJECT_REASONS) resultsRejected.inc({ run: r, reason }, 0);
      runStep.set({ run: r }, step);
      runTargetSteps.set({ run: r }, targetSteps);
      lastStepTimestamp.set({ run: r }, nowMs / 1000);
      lastCheckpointTimestamp.set({ run: r }, nowMs / 1000);
      runInfo.set({ run: r, ...info }, 1);
    },
    recordStep(r, { step, seconds, lossPre, lossPost, returnPre, returnPost, nowMs = Date.now() }) {
      metaSteps.inc({ run: r });
      runStep.set({ run: r }, step);
      lastStepTimestamp.set({ run: r }, nowMs / 1000);
      stepDuration.observe({ run: r }, seconds);
      if (lossPre !== undefined) metaTrainLoss.set({ run: r, phase: 'pre' }, lossPre);
      if (lossPost !== undefined) metaTrainLoss.set({ run: r, phase: 'post' }, lossPost);
      if (returnPre !== undefined) metaTrainReturn.set({ run: r, phase: 'pre' }, returnPre);
      if (returnPost !== undefined) metaTrainReturn.set({ run: r, phase: 'post' }, returnPost);
    },
    recordEval(r, { innerSteps, loss, accuracy }) {
      const labels = { run: r, inner_steps: String(innerSteps) };
      evalLoss.set(labels, loss);
      if (accuracy !== undefined) evalAccuracy.set(labels, accuracy);
    },
    recordEvalReturn(r, { innerSteps, ret, gain }) {
      const labels = { run: r, inner_steps: String(innerSteps) };
      evalReturn.set(labels, ret);
      if (gain !== undefined) evalReturnGain.set(labels, gain);
    },
    recordRejected(r, reason, n = 1) {
      resultsRejected.inc({ run: r, reason }, n);
    },
    recordCheckpoint(r, nowMs = Date.now()) {
      checkpoints.inc({ run: r });
      lastCheckpointTimestamp.set({ run: r }, nowMs / 1000);
    },
    setRunState,
    setRunCounts(counts) {
      for (const state of RUN_STATES) runs.set({ state }, counts[state] ?? 0);
    },
    removeRun(r) {
      for (const m of runOnly) m.remove({ run: r });
      // remove() needs every label of a series, so find the run's series first.
      return Promise.all(runAndMore.map((m) => removeMatching(m, r))).then(() => undefined);
    },
  };
}

type LabelSet = Record<string, string | number>;
interface Removable {
  get(): Promise<{ values: { labels: LabelSet }[] }>;
  remove(labels: LabelSet): void;
}

async function removeMatching(m: Removable, run: string): Promise<void> {
  const { values } = await m.get();
  for (const { labels } of values) if (labels.run === run) m.remove(labels);
}
