/**
 * @metaloop/coordinator: the server. What a program that runs a coordinator needs, and no more;
 * its parts for tests and benchmarks (aggregation, validation, optimizer, checkpoints...) are in
 * `@metaloop/coordinator/internal` (src/internal.ts), which may change without notice.
 */
// The coordinator itself: start it on a transport, submit and drive runs.
export { Coordinator, type CoordinatorState } from './coordinator.js';
// Its options and the per-run limits it enforces.
export {
  compileCoordinatorOptions,
  DEFAULT_RUN_LIMITS,
  type CompiledCoordinatorOptions,
  type CoordinatorOptions,
  type RunLimits,
} from './coordinator-options.js';
export type { DispatchMode } from './dispatch.js';
// The server command (`metaloop-coordinator`, `metaloop coordinator`): its flags and how it serves.
export { addCoordinatorFlags, serveCoordinator, type CoordinatorFlags } from './commands/server.js';
// Errors a caller of the coordinator can meet.
export {
  ConflictError,
  CoordinatorError,
  LifecycleError,
  RunCancelledError,
  RunFailedError,
  UnknownRunError,
} from './errors.js';
