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
export { ApiClient, type ApiClientOptions, type WaitOptions } from './client.js';
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
export { ci95FromSums, evalSummary, isTerminal, paramsSha256, RUN_STATES, stateFromProto, stateToProto, type RunStateName } from './run-state.js';
export { decodeCheckpoint, encodeCheckpoint, loadLatestCheckpoint, resumePoint, type CheckpointData, type ResumePoint } from './checkpoint.js';
export { toApiError, type ApiErrorCode } from './api.js';
export {
  ConflictError,
  CoordinatorError,
  LifecycleError,
  RunCancelledError,
  RunFailedError,
  UnknownRunError,
  UsageError,
} from './errors.js';
export { EXIT, exitCodeFor, type ExitCode } from './exit-codes.js';
export { CoordinatorObservability, UNKNOWN_RUN_LABEL, type CoordinatorObservabilityOptions, type RunObserver } from './observe.js';
export { HISTORY_STATES, RunHistory, type HistoryEval, type HistoryJson, type HistoryState, type HistoryStateName } from './history.js';
export {
  addNatsFlags,
  cliLogger,
  CONNECTION_HELP,
  exitQuietlyOnBrokenPipe,
  oneLineUsageErrors,
  runProgram,
  type GlobalOptions,
} from './commands/program.js';
export { addCoordinatorFlags, serveCoordinator, type CoordinatorFlags } from './commands/server.js';
