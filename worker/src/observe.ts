/**
 * Worker instrumentation: the worker metrics of @metaloop/shared bound to this process's tfjs
 * (tensor counts sampled at scrape time) and worker id. The Worker reports shards, parameter
 * fetches and its backend through `WorkerMetrics`; the CLI serves the registry on /metrics.
 */
import './tfjs-setup.js';
import * as tf from '@tensorflow/tfjs-core';
import { createWorkerMetrics, MetricsRegistry, type WorkerMetrics } from '@metaloop/shared';

export interface WorkerObservability {
  readonly registry: MetricsRegistry;
  readonly metrics: WorkerMetrics;
}

/**
 * The worker metrics on a registry whose every series carries `worker="<workerId>"` (when the id
 * is known later, set it with `registry.setDefaultLabels({ worker })`).
 */
export function createWorkerObservability(workerId?: string, registry: MetricsRegistry = new MetricsRegistry()): WorkerObservability {
  const metrics = createWorkerMetrics(registry, {
    ...(workerId !== undefined ? { workerId } : {}),
    tensorMemory: () => {
      const m = tf.memory();
      return { numTensors: m.numTensors, numBytes: m.numBytes };
    },
  });
  return { registry, metrics };
}
