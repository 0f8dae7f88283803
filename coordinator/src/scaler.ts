/**
 * Kubernetes worker scaler: sets the replicas of the worker Deployment to what the active runs ask
 * for. Every `intervalMs` (and soon after a run changes state, see `poke()`) it
 *   1. computes the demand: the SUM of `workers.count` over pending and running runs (concurrent
 *      runs share the workers by fair share, so each run's request adds up; paused and finished
 *      runs ask for nothing), clamped to [minReplicas, maxReplicas] — min when idle;
 *   2. reads the Deployment's scale (GET /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale);
 *   3. PATCHes `spec.replicas` (JSON merge patch) only when it differs.
 * This needs nothing but get/patch on `deployments/scale` of that one Deployment (the Helm chart's
 * Role). API errors (unreachable, 403, 5xx, ...) are logged and counted in
 * metaloop_scaler_errors_total{reason} and retried after an exponential back-off (base × 2^(n-1),
 * capped, reset by the first success); they never end the loop or the coordinator.
 */
import { readFileSync } from 'node:fs';
import { AppsV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import {
  createScalerMetrics,
  MetricsRegistry,
  silentLogger,
  type Logger,
  type metaloop,
  type ScalerErrorReason,
  type ScalerMetrics,
} from '@metaloop/shared';
import { CoordinatorError, LifecycleError } from './errors.js';
import { stateFromProto } from './run-state.js';

/** Namespace file of the pod's service account (in-cluster). */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface ScalerOptions {
  /** Name of the worker Deployment (METALOOP_WORKER_DEPLOYMENT). */
  readonly deployment: string;
  /** Its namespace (METALOOP_WORKER_NAMESPACE). Default: the pod's own namespace, else the kubeconfig context's, else `default`. */
  readonly namespace?: string | undefined;
  /** Replicas when no run is active. Default 0. */
  readonly minReplicas?: number | undefined;
  /** Upper bound of the replicas. Default 8 (as the Helm chart). */
  readonly maxReplicas?: number | undefined;
  /** Workers the active runs ask for before clamping (see `demandFromRecords`). */
  readonly demand: () => number | Promise<number>;
  /** Period of the reconcile loop. Default 10000. */
  readonly intervalMs?: number | undefined;
  /** First back-off delay after an error. Default 1000. */
  readonly backoffBaseMs?: number | undefined;
  /** Largest back-off delay. Default 60000. */
  readonly backoffMaxMs?: number | undefined;
  /** A Kubernetes API request without an answer after this long counts as `unreachable`. Default 10000. */
  readonly requestTimeoutMs?: number | undefined;
  /** API access, first match wins: a ready KubeConfig; a kubeconfig file; a server URL without
   *  credentials (e.g. `kubectl proxy` at http://127.0.0.1:8001); else the in-cluster service account. */
  readonly kubeConfig?: KubeConfig | undefined;
  readonly kubeconfigFile?: string | undefined;
  readonly apiServer?: string | undefined;
  readonly registry?: MetricsRegistry | undefined;
  readonly logger?: Logger | undefined;
  /** Called after each cycle (tests, debugging). */
  readonly onCycle?: ((cycle: ScalerCycle) => void) | undefined;
}

export interface CompiledScalerOptions {
  readonly deployment: string;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly intervalMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly requestTimeoutMs: number;
}

/** Outcome of one reconcile cycle. */
export interface ScalerCycle {
  readonly ok: boolean;
  /** Demand before clamping (undefined when it could not be computed). */
  readonly demand?: number | undefined;
  readonly desired?: number | undefined;
  /** Replicas read from the API. */
  readonly current?: number | undefined;
  readonly patched: boolean;
  readonly reason?: ScalerErrorReason | undefined;
  readonly error?: string | undefined;
  /** Delay before the next cycle: the interval after a success, the back-off after a failure. */
  readonly delayMs: number;
}

function wholeNumber(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new CoordinatorError(`scaler: ${name} must be a whole number >= ${min}, got ${v}`);
  return v;
}

export function compileScalerOptions(o: ScalerOptions): CompiledScalerOptions {
  if (!o.deployment) throw new CoordinatorError('scaler: the worker Deployment name is missing (--worker-deployment or METALOOP_WORKER_DEPLOYMENT)');
  const minReplicas = wholeNumber('minReplicas', o.minReplicas ?? 0, 0);
  const maxReplicas = wholeNumber('maxReplicas', o.maxReplicas ?? 8, 1);
  if (minReplicas > maxReplicas) throw new CoordinatorError(`scaler: minReplicas (${minReplicas}) > maxReplicas (${maxReplicas})`);
  const backoffBaseMs = wholeNumber('backoffBaseMs', o.backoffBaseMs ?? 1000, 1);
  return {
    deployment: o.deployment,
    minReplicas,
    maxReplicas,
    intervalMs: wholeNumber('intervalMs', o.intervalMs ?? 10_000, 1),
    backoffBaseMs,
    backoffMaxMs: Math.max(backoffBaseMs, wholeNumber('backoffMaxMs', o.backoffMaxMs ?? 60_000, 1)),
    requestTimeoutMs: wholeNumber('requestTimeoutMs', o.requestTimeoutMs ?? 10_000, 1),
  };
}

/** Workers asked for by the active runs: the sum of `workers.count` over pending and running runs. */
export function demandFromRecords(records: readonly metaloop.IRunRecord[]): number {
  let sum = 0;
  for (const rec of records) {
    const state = stateFromProto(rec.state);
    if (state !== 'pending' && state !== 'running') continue;
    let count = 1;
    try {
      const spec = JSON.parse(rec.specJson ?? '{}') as { workers?: { count?: unknown } };
      const c = spec.workers?.count;
      if (typeof c === 'number' && Number.isInteger(c) && c > 0) count = c;
    } catch {
      // An unreadable spec still asks for one worker (the spec schema's default).
    }
    sum += count;
  }
  return sum;
}

/** Desired replicas: the demand clamped to [min, max]. */
export function desiredReplicas(demand: number, min: number, max: number): number {
  const d = Number.isFinite(demand) ? Math.round(demand) : 0;
  return Math.min(max, Math.max(min, d));
}

/** Back-off delay before retry number `failures` (1 = first failure): base × 2^(failures−1), capped. */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
}

class ScalerTimeoutError extends Error {}

/** Error class of a failed cycle (the `reason` label) and a short message. */
export function classifyScalerError(e: unknown): { reason: ScalerErrorReason; message: string } {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'number' && code >= 100 && code < 600) {
    let detail = '';
    const body = (e as { body?: unknown }).body;
    try {
      const status = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown } | undefined;
      if (typeof status?.message === 'string') detail = `: ${status.message}`;
    } catch {
      if (typeof body === 'string') detail = `: ${body.slice(0, 200)}`;
    }
    const reason: ScalerErrorReason =
      code === 401 ? 'unauthorized' : code === 403 ? 'forbidden' : code === 404 ? 'not_found' : code === 409 ? 'conflict' : code >= 500 ? 'server' : code >= 400 ? 'client' : 'invalid_response';
    return { reason, message: `HTTP ${code}${detail}` };
  }
  const message = e instanceof Error ? e.message.split('\n')[0]! : String(e);
  return { reason: 'unreachable', message };
}

/** The API access to use (see ScalerOptions.kubeConfig). */
export function loadKubeConfig(o: Pick<ScalerOptions, 'kubeConfig' | 'kubeconfigFile' | 'apiServer'>, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  if (o.kubeConfig) return o.kubeConfig;
  const kc = new KubeConfig();
  if (o.kubeconfigFile) {
    kc.loadFromFile(o.kubeconfigFile);
  } else if (o.apiServer) {
    let url: URL;
    try {
      url = new URL(o.apiServer);
    } catch {
      throw new CoordinatorError(`scaler: --k8s-api expects a URL like http://127.0.0.1:8001, got ${JSON.stringify(o.apiServer)}`);
    }
    kc.loadFromOptions({
      clusters: [{ name: 'api', server: o.apiServer.replace(/\/$/, ''), skipTLSVerify: url.protocol === 'http:' }],
      users: [{ name: 'none' }],
      contexts: [{ name: 'api', cluster: 'api', user: 'none' }],
      currentContext: 'api',
    });
  } else {
    if (!env.KUBERNETES_SERVICE_HOST) {
      throw new CoordinatorError('scaler: not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST unset); pass --kubeconfig or --k8s-api, or turn the scaler off');
    }
    kc.loadFromCluster();
  }
  return kc;
}

function defaultNamespace(kc: KubeConfig): string {
  try {
    const ns = readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8').trim();
    if (ns) return ns;
  } catch {
    // not in a pod
  }
  return kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
}

type ScalerState = 'created' | 'running' | 'closed';

export class KubernetesScaler {
  readonly options: CompiledScalerOptions;
  readonly namespace: string;
  readonly metrics: ScalerMetrics;
  private readonly api: AppsV1Api;
  private readonly log: Logger;
  private readonly demand: () => number | Promise<number>;
  private readonly onCycle: ((cycle: ScalerCycle) => void) | undefined;
  private state: ScalerState = 'created';
  private failures = 0;
  private dirty = false;
  private backingOff = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  private constructor(options: ScalerOptions, kc: KubeConfig) {
    this.options = compileScalerOptions(options);
    this.namespace = options.namespace || defaultNamespace(kc);
    this.api = kc.makeApiClient(AppsV1Api);
    this.log = options.logger ?? silentLogger;
    this.demand = options.demand;
    this.onCycle = options.onCycle;
    this.metrics = createScalerMetrics(options.registry ?? new MetricsRegistry());
  }

  /** Validates the options and loads the API config; no request yet (`run()` starts the loop). */
  // async so that invalid options or a missing kubeconfig reject the returned promise rather than throw.
  // eslint-disable-next-line @typescript-eslint/require-await
  static async create(options: ScalerOptions): Promise<KubernetesScaler> {
    compileScalerOptions(options);
    return new KubernetesScaler(options, loadKubeConfig(options));
  }

  /** The loop: resolves after `close()`; never rejects because of the API. Refuses a second call. */
  run(): Promise<void> {
    if (this.state !== 'created') return Promise.reject(new LifecycleError('run the scaler', this.state));
    this.state = 'running';
    const o = this.options;
    this.log.info('worker scaler started', { deployment: o.deployment, namespace: this.namespace, min: o.minReplicas, max: o.maxReplicas, intervalMs: o.intervalMs });
    this.loop = this.loopBody();
    return this.loop;
  }

  /** Asks for a cycle soon (e.g. a run changed state). Ignored while backing off after an error. */
  poke(): void {
    this.dirty = true;
    if (!this.backingOff) this.wake?.();
  }

  /** Stops the loop (idempotent); waits for a cycle in progress (bounded by requestTimeoutMs). */
  async close(): Promise<void> {
    if (this.state === 'closed') return this.loop?.catch(() => {});
    this.state = 'closed';
    this.wake?.();
    await this.loop?.catch(() => {});
  }

  private async loopBody(): Promise<void> {
    while (this.isRunning()) {
      this.dirty = false;
      const cycle = await this.cycle();
      if (cycle.ok) this.failures = 0;
      try {
        this.onCycle?.(cycle);
      } catch {
        // a listener's bug must not stop the scaler
      }
      if (!this.isRunning()) break;
      if (cycle.ok && this.dirty) continue;
      this.backingOff = !cycle.ok;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, cycle.delayMs);
        timer.unref?.();
        // done() is a hoisted function declaration (setTimeout above uses it), so it has its own `this`.
        // eslint-disable-next-line @typescript-eslint/no-this-alias
        const self = this;
        function done(): void {
          clearTimeout(timer);
          self.wake = undefined;
          resolve();
        }
        this.wake = done;
      });
      this.backingOff = false;
    }
  }

  private isRunning(): boolean {
    return this.state === 'running';
  }

  /** One reconcile pass; never throws. */
  private async cycle(): Promise<ScalerCycle> {
    const o = this.options;
    let demand: number;
    try {
      demand = await this.demand();
    } catch (e) {
      return this.failed('demand', e instanceof Error ? e.message : String(e), {});
    }
    const desired = desiredReplicas(demand, o.minReplicas, o.maxReplicas);
    this.metrics.desiredReplicas.set(desired);
    let current: number | undefined;
    try {
      const scale = await this.withTimeout('GET scale', this.api.readNamespacedDeploymentScale({ name: o.deployment, namespace: this.namespace }));
      const replicas: unknown = scale?.spec ? (scale.spec.replicas ?? 0) : undefined; // 0 is omitted (omitempty)
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
        return this.failed('invalid_response', `scale of ${o.deployment} without spec.replicas`, { demand, desired });
      }
      current = replicas;
      this.metrics.currentReplicas.set(current);
      if (current === desired) {
        this.log.debug('workers at the desired scale', { replicas: current, demand });
        return { ok: true, demand, desired, current, patched: false, delayMs: o.intervalMs };
      }
      await this.withTimeout(
        'PATCH scale',
        this.api.patchNamespacedDeploymentScale(
          { name: o.deployment, namespace: this.namespace, body: { spec: { replicas: desired } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      );
      this.metrics.patches.inc();
      this.metrics.currentReplicas.set(desired);
      this.log.info('scaled workers', { deployment: o.deployment, from: current, to: desired, demand });
      return { ok: true, demand, desired, current, patched: true, delayMs: o.intervalMs };
    } catch (e) {
      const { reason, message } = classifyScalerError(e);
      return this.failed(reason, message, { demand, desired, current });
    }
  }

  private failed(reason: ScalerErrorReason, message: string, at: { demand?: number; desired?: number; current?: number | undefined }): ScalerCycle {
    this.failures++;
    const delayMs = backoffDelay(this.failures, this.options.backoffBaseMs, this.options.backoffMaxMs);
    this.metrics.errors.inc({ reason });
    this.log.warn('worker scaler: cycle failed; retrying after back-off', {
      reason,
      error: message,
      deployment: this.options.deployment,
      namespace: this.namespace,
      failures: this.failures,
      retryInMs: delayMs,
    });
    return { ok: false, ...at, patched: false, reason, error: message, delayMs };
  }

  private withTimeout<T>(what: string, p: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ScalerTimeoutError(`${what}: no answer within ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
      timer.unref?.();
    });
    p.catch(() => {}); // a late failure after the timeout is not unhandled
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }
}
