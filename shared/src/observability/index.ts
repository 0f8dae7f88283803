export {
  compileObservabilityServerOptions,
  DEFAULT_COORDINATOR_METRICS_PORT,
  DEFAULT_WORKER_METRICS_PORT,
  ensureDefaultMetrics,
  parseMetricsPort,
  startObservabilityServer,
  type ObservabilityServer,
  type ObservabilityServerOptions,
  type Readiness,
  type ReadinessCheck,
  type ResolvedObservabilityServerOptions,
} from './server.js';
export {
  createCoordinatorMetrics,
  FAST_BUCKETS_SECONDS,
  REJECT_REASONS,
  RUN_STATES,
  STALENESS_BUCKETS,
  STEP_BUCKETS_SECONDS,
  type CoordinatorMetrics,
  type RejectReason,
  type RunInfoLabels,
  type RunStateLabel,
} from './coordinator-metrics.js';
export { createScalerMetrics, SCALER_ERROR_REASONS, type ScalerErrorReason, type ScalerMetrics } from './scaler-metrics.js';
export { createWorkerMetrics, type TensorMemory, type WorkerMetrics, type WorkerMetricsOptions } from './worker-metrics.js';
export { Registry as MetricsRegistry } from 'prom-client';
export { READINESS_PROBE_RUN_ID, transportReadiness } from './readiness.js';
