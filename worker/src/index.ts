export { selectBackend, resolveBackendPreference, wasmDirectory, BACKEND_PREFERENCES, type BackendAttempt, type BackendInfo, type BackendPreference, type SelectBackendOptions } from './backend.js';
export {
  compileRun,
  computeShard,
  evalRows,
  MAX_TASK_BATCH,
  paramTensors,
  taskTensors,
  trainRows,
  type CompiledRun,
  type ComputeShardOptions,
  type EvalShardResult,
  type ShardComputation,
  type ShardWork,
  type TrainShardResult,
} from './engine.js';
export { BackendError, ShardAbortedError, ShardError, UnsupportedError, WorkerOptionsError, WorkerStateError, type BackendName } from './errors.js';
export { createModel, createModels, onGpu, type Model, type NamedTensors, type RunModels, type TaskBatchedModel } from './model/model.js';
export {
  createSinusoid,
  createTaskFamily,
  sampleSinusoid,
  TASK_FAMILIES,
  type Examples,
  type LossKind,
  type SinusoidConfig,
  type SinusoidTask,
  type TaskData,
  type TaskFamily,
  type TaskFamilyFactory,
} from './tasks/index.js';
export {
  adapt,
  ALGORITHMS,
  createAlgorithm,
  createFomaml,
  createMaml,
  innerStep,
  LOSSES,
  lossOf,
  sgdEvaluate,
  type Algorithm,
  type AlgorithmFactory,
  type InnerLoop,
  type Loss,
  type LossFn,
  type TaskEvaluation,
  type TaskMetaGradient,
  type TaskTensors,
  type PerTaskLossFn,
  taskLoss,
} from './algorithms/index.js';
export { compileWorkerOptions, WORKER_VERSION, type CompiledWorkerOptions, type WorkerOptions } from './options.js';
export { Worker, type WorkerState, type WorkerStats } from './worker.js';
export { describeGpu, describeGpuLine, NO_GPU, parseNvidiaSmi, visibleGpus, type GpuInfo, type GpuReport } from './gpu.js';
export { runSelfTest, SELF_TEST_SPEC, type SelfTestOptions, type SelfTestReport } from './self-test.js';
export { EXPORT_FORMAT, EXPORT_WEIGHTS_FILE, loadExportedModel, saveExportedModel, type ExportedModel, type ExportedModelJson, type ExportMetadata } from './export.js';
