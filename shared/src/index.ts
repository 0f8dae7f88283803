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
  MetaloopError,
  NotFoundError,
  PermissionError,
  RequestTimeoutError,
  SpecError,
  TransportError,
  type SpecIssue,
} from './errors.js';
export {
  adaptedParamNames,
  conv4FeatureSize,
  headParamNames,
  initParams,
  modelLayout,
  paramLayout,
  taskDims,
  type TaskDims,
} from './layout.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions, type LogLevel } from './logger.js';
export { hashWords, Rng, SeedDomain, taskSeed, type SeedDomainName } from './seeds.js';
export {
  applyOverrides,
  defaultEvalTasks,
  loadSpec,
  parseSpec,
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
export { API_VERBS, assertRunId, DEFAULT_PREFIX, subjects, workerToken, type ApiVerb, type Subjects } from './subjects.js';
export { shardMsgId, shardSizes, shardTaskSeeds } from './shard.js';
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
