/**
 * @metaloop/coordinator/internal: the coordinator's parts for tests and benchmarks (not its public
 * API, src/index.ts; these may change without notice). Like nats.js's internal_mod.ts beside mod.ts.
 */
export * from './index.js';
// Scheduling and the live-worker view.
export { FairShare, ShardTimes, type Release } from './scheduler.js';
export { WorkerView } from './workers.js';
/** Re-exported from @metaloop/shared (shard.ts), where the shard is defined. */
export { shardSizes } from '@metaloop/shared';
// The result path: decode and validate once, place checked results, sum a step.
export { decodeResult, ResultValidator, resultShape, isChecked, type Rejected, type ResultShape } from './validate.js';
export { StepCollector, type CollectorOptions, type EvalSums } from './aggregator.js';
export {
  REJECT_REASONS,
  RejectCounter,
  type CheckedResult,
  type EvalShardSums,
  type Invalid,
  type RejectReason,
  type ShardKindName,
  type Verdict,
} from './result.js';
// The outer optimizer.
export { Adam, createOptimizer, Sgd, type AdamOptions, type OptimizerState, type OuterOptimizer } from './optimizer.js';
// Run records, eval summaries, checkpoints, history.
export { ci95FromSums, evalSummary, paramsSha256 } from './run-state.js';
export { decodeCheckpoint, encodeCheckpoint, loadLatestCheckpoint, resumePoint, type CheckpointData, type ResumePoint } from './checkpoint.js';
export { RunHistory } from './history.js';
// The API's error mapping and the coordinator's metrics.
export { toApiError, type ApiErrorCode } from './api.js';
export { CoordinatorObservability, UNKNOWN_RUN_LABEL, type CoordinatorObservabilityOptions, type RunObserver } from './observe.js';
