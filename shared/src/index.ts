export { metaloop } from './gen/metaloop.js';
export {
  allFinite,
  assertSameLayout,
  decodeFloat32,
  decodeTensorBundle,
  encodeFloat32,
  encodeTensorBundle,
  fromBundle,
  layoutSize,
  sizeOf,
  TENSOR_BUNDLE_PAD_FIELD,
  toBundle,
  type FlatTensors,
  type TensorSpec,
} from './codec.js';
export {
  ApiCallError,
  CodecError,
  ConnectionError,
  InvariantError,
  MetaloopError,
  ModelError,
  NotFoundError,
  PermissionError,
  RequestTimeoutError,
  SpecError,
  SubjectError,
  TransportError,
  type SpecIssue,
} from './errors.js';
export {
  adaptedParamNames,
  headParamNames,
  initParams,
  modelGraph,
  modelLayout,
  paramLayout,
  taskDims,
  type TaskDims,
} from './layout.js';
export { ACTIVATIONS, applyActivation, type ActivationName } from './model/activations.js';
export { buildGraph, kerasName, MODEL_INPUT, type GraphNode, type GraphProblem, type LayerSpec, type ModelGraph } from './model/graph.js';
export { graphForward, largestActivation, type ForwardHooks } from './model/forward.js';
export { FUSED_BATCH_NORM, fusedBatchNorm, hasFusedKernel } from './model/fused-kernels.js';
export { drawInitializer, fans, resolveInitializer, type Initializer, type InitializerInput } from './model/initializers.js';
export { compileModel, modelIssues, modelLayers, type PresetDims } from './model/model.js';
export { CONV4_BN_EPSILON } from './model/presets/conv4.js';
export { normalize as normalizeComposite } from './model/layers/batch-normalization.js';
export { LAYER_TYPES, LAYERS, layerDef } from './model/registry.js';
export { Conv4ModelSchema, LayersModelSchema, MlpModelSchema, ModelSchema, Resnet12ModelSchema } from './model/schema.js';
export type { AnyLayerDef, LayerContext, LayerDef, LayerParams, ParamDecl, Shape, Tensor, Tf } from './model/types.js';
export {
  isRlFamily,
  isRlTask,
  LOG_STD,
  RL_FAMILIES,
  rlDims,
  type GaussianMlpModelSpec,
  type Navigation2dTaskSpec,
  type PendulumTaskSpec,
  type RlFamily,
  type RlSpec,
  type RlTaskSpec,
} from './rl-spec.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions, type LogLevel } from './logger.js';
export { hashWords, Rng, SeedDomain, taskSeed, type SeedDomainName } from './seeds.js';
export {
  applyOverrides,
  defaultEvalTasks,
  loadSpec,
  parseSpec,
  parseSpecDocument,
  RunSpecSchema,
  shardCount,
  specToYaml,
  validateSpec,
  type AlgorithmSpec,
  type ModelSpec,
  type RunSpec,
  type RunSpecInput,
  type TaskSpec,
} from './spec.js';
export { specFromJson, specToJson } from './spec-json.js';
export { IMAGE_LAYOUTS, TEXT_FORMATS, type ImageLayout } from './spec-data.js';
export { datasetRefs, type DatasetRef } from './dataset-ref.js';
export { API_VERBS, assertRunId, DEFAULT_PREFIX, subjects, workerToken, type ApiVerb, type Subjects } from './subjects.js';
export { shardMsgId, shardSizes, shardTaskSeeds } from './shard.js';
export { kindFromProto, kindToProto, type ShardKindName } from './shard.js';
export { DEFAULT_LEASE_MS, DEFAULT_MAX_DELIVER, defaultResultTimeoutMs, extendIntervalMs } from './lease.js';
export type {
  AssignedOptions,
  AssignedShard,
  Assignments,
  Bus,
  Closer,
  Connection,
  ConsumeOptions,
  ParamStore,
  PutParamsOptions,
  ResultAck,
  ResultMessage,
  ResultStream,
  RunStore,
  ServeResultsOptions,
  Transport,
  WorkerTransport,
  WorkMessage,
  WorkQueue,
  WorkQueueOptions,
} from './transport.js';
export * from './observability/index.js';
export {
  compileInProcTransportOptions,
  createInProc,
  InProcTransport,
  type CompiledInProcTransportOptions,
  type InProcTransportOptions,
} from './transport/inproc.js';
export {
  findNatsServer,
  NatsServerError,
  startNatsServer,
  type NatsServer,
  type NatsServerOptions,
} from './nats-server.js';
export { connectNats, NatsTransport } from './transport/nats.js';
export {
  compileNatsTransportOptions,
  type CompiledNatsTransportOptions,
  type NatsTlsOptions,
  type NatsTransportOptions,
} from './transport/nats-options.js';
export { DEFAULT_NATS_URL, NATS_FLAG_SPECS, natsFlagsToEnv, natsOptionsFromFlags, type NatsFlags, type NatsFlagSpec } from './transport/nats-flags.js';
export { isTerminal, RUN_STATES, stateFromProto, stateToProto, type RunStateName } from './run-states.js';
export { HISTORY_STATES, type HistoryEval, type HistoryJson, type HistoryState, type HistoryStateName } from './history-json.js';
