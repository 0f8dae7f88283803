/**
 * libtensorflow's thread pools for the `tensorflow` backend: one intra-op and one inter-op thread
 * unless the environment says otherwise. libtensorflow reads TF_NUM_INTRAOP_THREADS and
 * TF_NUM_INTEROP_THREADS once, when tfjs-node's binding loads, so this runs just before.
 *
 * Why one: a worker is one compute process per core (workers scale by processes, DESIGN.md), and
 * a MAML task is hundreds of small ops; TensorFlow's default pools (one thread per core each) split
 * and spin-wait on them. Measured on a 2-core machine, Conv4 5w1s second-order MAML (docs/compute.md):
 * 94–99 CPU ms per task with one thread, 116–129 with two intra-op threads, 109–155 with the
 * defaults, and no faster in wall time either (99 ms vs 110–134 ms per task).
 */
export const TF_THREAD_VARIABLES = ['TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS'] as const;

export interface TfThreads {
  readonly intraOp: string;
  readonly interOp: string;
  /** True when either came from the environment rather than this default. */
  readonly fromEnvironment: boolean;
}

/** Set each unset variable to 1 (call before loading tfjs-node); what libtensorflow will use. */
export function defaultTfThreads(env: NodeJS.ProcessEnv = process.env): TfThreads {
  let fromEnvironment = false;
  for (const name of TF_THREAD_VARIABLES) {
    if (env[name] === undefined || env[name] === '') env[name] = '1';
    else fromEnvironment = true;
  }
  return { intraOp: env.TF_NUM_INTRAOP_THREADS!, interOp: env.TF_NUM_INTEROP_THREADS!, fromEnvironment };
}
