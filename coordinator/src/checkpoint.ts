/**
 * The checkpoint: what a run saves every `checkpoint.every` steps and resumes from after a
 * coordinator restart (θ, the outer optimizer's state bit for bit, the task sampler's state):
 * encode/decode, save (retried, old ones pruned), load the newest readable one, and where an active
 * run resumes from (resumePoint).
 */
import { fromBundle, metaloop, paramLayout, toBundle, specFromJson, type Logger, type RunSpec, type RunStore, type TensorSpec } from '@metaloop/shared';
import { StoredDataError } from './errors.js';
import { RunHistory } from './history.js';
import { isTerminal, stateFromProto } from './run-state.js';
import type { OptimizerState } from './optimizer.js';
import { retry } from './run-store.js';

// TensorBundles carry float32. Adam's float64 moments are stored losslessly as their raw
// little-endian float64 bytes, in one tensor named `float64` of shape [2n] (bytes pass through the
// codec untouched), so a resumed run continues bit for bit.

const F64_TENSOR = 'float64';

function float64Bundle(values: Float64Array): metaloop.ITensorBundle {
  const bytes = new Uint8Array(values.byteLength);
  bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return { tensors: [{ name: F64_TENSOR, shape: [values.length * 2] }], data: bytes };
}

function fromFloat64Bundle(bundle: metaloop.ITensorBundle | null | undefined, expected: number): Float64Array {
  const tensors = bundle?.tensors ?? [];
  const data = bundle?.data ?? new Uint8Array(0);
  if (tensors.length !== 1 || tensors[0]?.name !== F64_TENSOR || data.byteLength !== expected * 8) {
    throw new StoredDataError('checkpoint', `checkpoint optimizer state: expected ${expected} float64 values`);
  }
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return new Float64Array(copy.buffer);
}

export interface CheckpointData {
  readonly runId: string;
  readonly step: number;
  readonly specJson: string;
  readonly params: Float32Array;
  readonly optimizer: OptimizerState;
  readonly createdMs: number;
  /** Task sampler state (JSON), see samplerState(). */
  readonly sampler?: string;
}

export function encodeCheckpoint(c: CheckpointData, layout: readonly TensorSpec[]): Uint8Array {
  return metaloop.Checkpoint.encode({
    runId: c.runId,
    step: c.step,
    specJson: c.specJson,
    params: toBundle({ layout, data: c.params }),
    adamM: float64Bundle(c.optimizer.m),
    adamV: float64Bundle(c.optimizer.v),
    adamT: c.optimizer.t,
    createdMs: c.createdMs,
    samplerJson: c.sampler ?? '',
  }).finish();
}

export function decodeCheckpoint(
  bytes: Uint8Array,
  layout: readonly TensorSpec[],
  optimizer: 'adam' | 'sgd',
): CheckpointData {
  const c = metaloop.Checkpoint.decode(bytes);
  const params = Float32Array.from(fromBundle(c.params, layout).data);
  const n = optimizer === 'adam' ? params.length : 0;
  return {
    runId: c.runId,
    step: c.step,
    specJson: c.specJson,
    params,
    optimizer: {
      kind: optimizer,
      t: c.adamT,
      m: fromFloat64Bundle(c.adamM, n),
      v: fromFloat64Bundle(c.adamV, n),
    },
    createdMs: c.createdMs,
    sampler: c.samplerJson,
  };
}

/**
 * The task sampler's state at `step`: tasks come from seed = hash(run seed, domain, step, index),
 * so the seed and the next step are all it has (held-out tasks are fixed: domain 'eval', step 0).
 */
export function samplerState(seed: number, step: number): string {
  return JSON.stringify({ kind: 'seed-hash', seed, step, evalStep: 0 });
}

/** Write checkpoint `step` of a run (retried), then delete all but its newest `keep` checkpoints. */
export async function storeCheckpoint(
  store: Pick<RunStore, 'putCheckpoint' | 'listCheckpoints' | 'deleteCheckpoint'>,
  runId: string,
  step: number,
  bytes: Uint8Array,
  keep: number,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  await retry('writing a checkpoint', logger, signal, () => store.putCheckpoint(runId, step, bytes));
  const steps = (await store.listCheckpoints(runId)).sort((a, b) => a - b);
  for (const old of steps.slice(0, Math.max(0, steps.length - keep))) {
    await store.deleteCheckpoint(runId, old).catch(() => {});
  }
}

/**
 * The newest checkpoint of a run that decodes for its spec's layout and optimizer (unreadable ones
 * are logged and skipped); undefined when there is none (the run restarts from θ_0).
 */
export async function loadLatestCheckpoint(
  store: Pick<RunStore, 'listCheckpoints' | 'getCheckpoint'>,
  runId: string,
  layout: readonly TensorSpec[],
  optimizer: 'adam' | 'sgd',
  logger: Logger,
): Promise<CheckpointData | undefined> {
  const steps = (await store.listCheckpoints(runId).catch(() => [] as number[])).sort((a, b) => b - a);
  for (const step of steps) {
    try {
      return decodeCheckpoint(await store.getCheckpoint(runId, step), layout, optimizer);
    } catch (err) {
      logger.warn('skipping an unreadable checkpoint', { run: runId, step, error: String(err) });
    }
  }
  return undefined;
}

/** Where an active run resumes after a coordinator restart. */
export interface ResumePoint {
  readonly record: metaloop.RunRecord;
  readonly spec: RunSpec;
  /** The newest readable checkpoint (none: from θ_0). */
  readonly checkpoint: CheckpointData | undefined;
  /** The stored history (none when missing or unreadable: a new one starts). */
  readonly history: RunHistory | undefined;
}

/**
 * The resume point of run `runId` from its stored record, checkpoints and history; null when the
 * run is not to be resumed (no record, ended, or a record that does not decode: logged).
 */
export async function resumePoint(
  store: Pick<RunStore, 'getRun' | 'listCheckpoints' | 'getCheckpoint' | 'getHistory'>,
  runId: string,
  logger: Logger,
): Promise<ResumePoint | null> {
  const bytes = await store.getRun(runId).catch(() => null);
  if (!bytes) return null;
  let record: metaloop.RunRecord;
  let spec: RunSpec;
  try {
    record = metaloop.RunRecord.decode(bytes);
    if (isTerminal(stateFromProto(record.state))) return null;
    spec = specFromJson(record.specJson, `spec of run ${runId}`);
  } catch (err) {
    logger.warn('cannot resume a run: bad record', { run: runId, error: String(err) });
    return null;
  }
  const checkpoint = await loadLatestCheckpoint(store, runId, paramLayout(spec), spec.outer.optimizer, logger);
  let history: RunHistory | undefined;
  try {
    const stored = await store.getHistory(runId);
    if (stored) history = RunHistory.decode(stored);
  } catch (err) {
    logger.warn('cannot read the run history; starting a new one', { run: runId, error: String(err) });
  }
  return { record, spec, checkpoint, history };
}
