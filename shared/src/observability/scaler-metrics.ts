/**
 * Metrics of the coordinator's Kubernetes worker scaler (coordinator/src/scaler.ts). Labels stay
 * bounded: `reason` is one of SCALER_ERROR_REASONS. docs/metrics.md lists every name.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Why a scaler cycle failed (the `reason` label of metaloop_scaler_errors_total). */
export const SCALER_ERROR_REASONS = [
  'unreachable', // no HTTP answer: connection refused/reset, DNS, TLS, timeout
  'unauthorized', // 401
  'forbidden', // 403 (RBAC)
  'not_found', // 404 (no such Deployment)
  'conflict', // 409
  'client', // another 4xx
  'server', // 5xx
  'invalid_response', // a 2xx answer without a usable spec.replicas
  'demand', // the coordinator's run table could not be read
] as const;
export type ScalerErrorReason = (typeof SCALER_ERROR_REASONS)[number];

export interface ScalerMetrics {
  /** Worker replicas the scaler wants (active runs' demand clamped to [min, max]). */
  readonly desiredReplicas: Gauge;
  /** Replicas of the worker Deployment's scale as last read from the API. */
  readonly currentReplicas: Gauge;
  readonly patches: Counter;
  readonly errors: Counter<'reason'>;
}

/** Registers the scaler metrics once per registry (a second call returns the same objects). */
export function createScalerMetrics(registry: Registry): ScalerMetrics {
  const existing = registry.getSingleMetric('metaloop_scaler_desired_replicas');
  if (existing) {
    return {
      desiredReplicas: existing as Gauge,
      currentReplicas: registry.getSingleMetric('metaloop_scaler_current_replicas') as Gauge,
      patches: registry.getSingleMetric('metaloop_scaler_patches_total') as Counter,
      errors: registry.getSingleMetric('metaloop_scaler_errors_total') as Counter<'reason'>,
    };
  }
  const registers = [registry];
  const errors = new Counter({
    name: 'metaloop_scaler_errors_total',
    help: 'Failed scaler cycles (Kubernetes API or run table), by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  for (const reason of SCALER_ERROR_REASONS) errors.inc({ reason }, 0);
  return {
    desiredReplicas: new Gauge({ name: 'metaloop_scaler_desired_replicas', help: 'Worker replicas the scaler wants: what active runs ask for (sum of workers.count), clamped to [min, max].', registers }),
    currentReplicas: new Gauge({ name: 'metaloop_scaler_current_replicas', help: 'Replicas of the worker Deployment scale as last read from the Kubernetes API.', registers }),
    patches: new Counter({ name: 'metaloop_scaler_patches_total', help: 'Changes of the worker Deployment replicas made by the scaler.', registers }),
    errors,
  };
}
