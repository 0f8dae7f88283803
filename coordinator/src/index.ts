export {
  Coordinator,
  compileCoordinatorOptions,
  type CompiledCoordinatorOptions,
  type CoordinatorOptions,
  type CoordinatorState,
  type RunLimits,
  DEFAULT_RUN_LIMITS,
} from './coordinator.js';
export type { DispatchMode } from './dispatch.js';
export { FairShare, ShardTimes, type Release } from './scheduler.js';
export { WorkerView } from './workers.js';
export { ResultValidator, type Invalid } from './validate.js';
export { ApiClient, type ApiClientOptions, type WaitOptions } from './client.js';
export {
  decodeResult,
  REJECT_REASONS,
  RejectCounter,
  shardSizes,
  StepCollector,
  type CollectorOptions,
  type EvalSums,
  type RejectReason,
  type Verdict,
} from './aggregator.js';
export { Adam, createOptimizer, Sgd, type AdamOptions, type OptimizerState, type OuterOptimizer } from './optimizer.js';
export {
  ci95FromSums,
  decodeCheckpoint,
  encodeCheckpoint,
  evalSummary,
  isTerminal,
  paramsSha256,
  RUN_STATES,
  stateFromProto,
  stateToProto,
  type CheckpointData,
  type RunStateName,
} from './records.js';
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
