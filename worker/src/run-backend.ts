/**
 * Which tfjs backend computes a run's shards: a function of the run spec (`workers.backend`) and of
 * the backends this worker may use (`--backend`), never of timing or of what the worker did before.
 *
 * Why (issue 15): workers used to time each new spec on wasm and on cpu and keep the faster. Under
 * load three workers reached different verdicts (one kept wasm, two cpu), so a run's shards were
 * computed on a mix of backends, whose kernels round differently, and which shard landed on which
 * backend depended on arrival order: θ differed between two identical runs on the same processes.
 * Bitwise equality is promised for workers on the same backend, so the backend must not be chosen
 * by a measurement that can come out differently on each worker.
 *
 * The rule, for runs computed on tfjs (runs on the fused host path, ./fused, and meta-RL runs, ./rl, use no tfjs):
 *  - spec `workers.backend: any` → the backend the worker's chain selected at start
 *    (tfjs-node-gpu → tfjs-node → wasm → cpu: the same on every worker with the same installation);
 *  - spec names a backend → that one: a worker started with `--backend any` switches to it (wasm
 *    and cpu are always there; tensorflow only when tfjs-node loaded); a worker pinned to another
 *    backend, or lacking it, refuses the shard with a transient ShardError naming both (the shard
 *    is handed back for another worker; on its last delivery the coordinator fails the run with it).
 */
import './tfjs-setup.js';
import * as tf from '@tensorflow/tfjs-core';
import { isRlTask, type RunSpec } from '@metaloop/shared';
import { selectBackend, type BackendInfo, type BackendPreference } from './backend.js';
import { compileRun } from './engine.js';
import { ShardError, type BackendName } from './errors.js';

export class RunBackends {
  private readonly selected: BackendInfo;
  private readonly allowed: BackendPreference;
  /** Backends initialised so far, by name (the selected one first). */
  private readonly infos = new Map<string, BackendInfo>();
  private currentInfo: BackendInfo;

  /** `selected`: what the chain chose at start; `allowed`: the worker's `--backend`. */
  constructor(selected: BackendInfo, allowed: BackendPreference) {
    this.selected = selected;
    this.allowed = allowed;
    this.currentInfo = selected;
    this.infos.set(selected.name, selected);
  }

  /** The backend of the last tfjs shard (what heartbeats report). */
  get current(): BackendInfo {
    return this.currentInfo;
  }

  /** The backend `spec`'s tfjs shards are computed on (the rule above; whether this worker can is use()'s question). */
  backendFor(spec: RunSpec): BackendName {
    return spec.workers.backend === 'any' ? this.selected.name : spec.workers.backend;
  }

  /** Make the backend `spec` requires the active one (see the rule above); `msgId` names the shard in errors. */
  async use(spec: RunSpec, msgId: string): Promise<BackendInfo> {
    // Host-only runs (the fused MLP path, meta-RL) need no tfjs backend.
    if (isRlTask(spec.task) || typeof compileRun(spec).fused !== 'string') return this.currentInfo;
    const wanted = this.backendFor(spec);
    let info = this.infos.get(wanted);
    if (!info) {
      if (this.allowed !== 'any' || wanted === 'tensorflow') {
        const has = this.allowed === 'any' ? `its chain found no native backend (it has ${this.selected.name})` : `it was started with --backend ${this.allowed}`;
        throw new ShardError(
          `run ${spec.name} requires backend '${wanted}' (workers.backend in its spec) but this worker cannot compute on it: ${has}. ` +
            `Start workers with --backend any (or ${wanted}), or submit the run with workers.backend: any`,
          msgId,
          true,
        );
      }
      info = await selectBackend({ require: wanted });
      this.infos.set(wanted, info);
    }
    if (tf.getBackend() !== info.name) await tf.setBackend(info.name);
    this.currentInfo = info;
    return info;
  }
}
