/**
 * `metaloop coordinator --k8s-scaler ...`: the flags of the Kubernetes worker scaler and its start
 * next to the coordinator (scaler.ts does the work). The Helm chart sets the METALOOP_* variables.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Logger } from '@metaloop/shared';
import type { Coordinator } from '../coordinator.js';
import { CoordinatorError } from '../errors.js';
import type { CoordinatorObservability } from '../observe.js';
import type { KubernetesScaler } from '../scaler.js';

export interface ScalerFlags {
  k8sScaler?: boolean;
  workerDeployment?: string;
  workerNamespace?: string;
  workerMinReplicas: number;
  workerMaxReplicas: number;
  k8sScalerIntervalMs: number;
  kubeconfig?: string;
  k8sApi?: string;
}

function wholeNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

/** METALOOP_K8S_SCALER: true/1/yes/on or false/0/no/off/empty. */
export function parseScalerEnv(value: string | undefined): boolean {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'false' || v === '0' || v === 'no' || v === 'off') return false;
  if (v === 'true' || v === '1' || v === 'yes' || v === 'on') return true;
  throw new CoordinatorError(`METALOOP_K8S_SCALER must be true or false, got ${JSON.stringify(value)}`);
}

export function addScalerOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--k8s-scaler', 'scale the worker Deployment to what active runs ask for (env METALOOP_K8S_SCALER=true)'))
    .addOption(new Option('--worker-deployment <name>', 'worker Deployment the scaler sets the replicas of (default: none; required with --k8s-scaler)').env('METALOOP_WORKER_DEPLOYMENT'))
    .addOption(new Option('--worker-namespace <ns>', "its namespace (default: the pod's own)").env('METALOOP_WORKER_NAMESPACE'))
    .addOption(new Option('--worker-min-replicas <n>', 'workers kept when no run is active').env('METALOOP_WORKER_MIN_REPLICAS').argParser(wholeNumber).default(0))
    .addOption(new Option('--worker-max-replicas <n>', 'upper bound of worker replicas').env('METALOOP_WORKER_MAX_REPLICAS').argParser(wholeNumber).default(8))
    .addOption(new Option('--k8s-scaler-interval-ms <ms>', 'how often the scaler checks (also right after a run changes state)').argParser(wholeNumber).default(10_000))
    .addOption(new Option('--kubeconfig <file>', 'Kubernetes API access from a kubeconfig file (default: the in-cluster service account)'))
    .addOption(new Option('--k8s-api <url>', 'Kubernetes API URL without credentials, e.g. `kubectl proxy` at http://127.0.0.1:8001 (default: none)'));
}

/**
 * Starts the scaler when enabled (flag or METALOOP_K8S_SCALER); undefined otherwise. Bad settings
 * throw; an unreachable API later is only logged and counted.
 */
export async function startScaler(
  flags: ScalerFlags,
  coordinator: Coordinator,
  metrics: CoordinatorObservability,
  log: Logger,
): Promise<{ scaler: KubernetesScaler; close: () => Promise<void> } | undefined> {
  if (!(flags.k8sScaler === true || parseScalerEnv(process.env.METALOOP_K8S_SCALER))) return undefined;
  // Loaded only now: ../scaler.js brings @kubernetes/client-node, which a coordinator without the scaler never needs.
  const { demandFromRecords, KubernetesScaler } = await import('../scaler.js');
  const scaler = await KubernetesScaler.create({
    deployment: flags.workerDeployment ?? '',
    namespace: flags.workerNamespace,
    minReplicas: flags.workerMinReplicas,
    maxReplicas: flags.workerMaxReplicas,
    intervalMs: flags.k8sScalerIntervalMs,
    kubeconfigFile: flags.kubeconfig,
    apiServer: flags.k8sApi,
    demand: async () => demandFromRecords(await coordinator.list(false)),
    registry: metrics.registry,
    logger: log,
  });
  const unsubscribe = metrics.onRunState(() => scaler.poke());
  const running = scaler.run();
  return {
    scaler,
    close: async () => {
      unsubscribe();
      await scaler.close();
      await running;
    },
  };
}
