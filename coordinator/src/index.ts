export { Coordinator, type CoordinatorState } from './coordinator.js';
export {
  compileCoordinatorOptions,
  DEFAULT_RUN_LIMITS,
  type CompiledCoordinatorOptions,
  type CoordinatorOptions,
  type RunLimits,
} from './coordinator-options.js';
export type { DispatchMode } from './dispatch.js';
export { FairShare, ShardTimes, type Release } from './scheduler.js';
export { WorkerView } from './workers.js';
/** Re-exported from @metaloop/shared (shard.ts), where the shard is defined. */
export { shardSizes } from '@metaloop/shared';
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
export { Adam, createOptimizer, Sgd, type AdamOptions, type OptimizerState, type OuterOptimizer } from './optimizer.js';
export { ci95FromSums, evalSummary, paramsSha256 } from './run-state.js';
export { decodeCheckpoint, encodeCheckpoint, loadLatestCheckpoint, resumePoint, type CheckpointData, type ResumePoint } from './checkpoint.js';
export { toApiError, type ApiErrorCode } from './api.js';
export {
  ConflictError,
  CoordinatorError,
  LifecycleError,
  RunCancelledError,
  RunFailedError,
  UnknownRunError,
} from './errors.js';
export { CoordinatorObservability, UNKNOWN_RUN_LABEL, type CoordinatorObservabilityOptions, type RunObserver } from './observe.js';
export { RunHistory } from './history.js';
export { addCoordinatorFlags, serveCoordinator, type CoordinatorFlags } from './commands/server.js';
