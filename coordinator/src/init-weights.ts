/**
 * θ₀ from uploaded weights (`init: weights`, a model read from a Keras file by the CLI): the spec
 * names the blob by its sha256 (`model.weights.sha256`), the `upload` verb brought it
 * (uploads.ts), and it holds the model's tensors as a TensorBundle in the model's layout. The
 * algorithm's extras (`lr.*`, `lslr.*`) start as `initParams` sets them.
 */
import { fromBundle, initParams, metaloop, modelLayout, paramLayout, specToJson, SpecError, type RunSpec, type RunStore } from '@metaloop/shared';
import { encodeCheckpoint, samplerState, type CheckpointData } from './checkpoint.js';
import { createOptimizer } from './optimizer.js';

/** The uploaded θ₀ a spec names, if any. */
export function initWeightsOf(spec: RunSpec): { readonly sha256: string } | undefined {
  const model = spec.model as { readonly weights?: { readonly sha256: string } };
  return model.weights;
}

/**
 * θ₀ in the run's parameter layout: the bundle's tensors first (their names and shapes must be the
 * model's), then the algorithm's extras. A bundle that does not fit is a SpecError on model.weights.
 */
export function initialParams(spec: RunSpec, bundle: Uint8Array, source = 'run spec'): Float32Array {
  const layout = modelLayout(spec);
  let model: Float32Array;
  try {
    model = Float32Array.from(fromBundle(metaloop.TensorBundle.decode(bundle), layout).data);
  } catch (err) {
    throw new SpecError([{ path: 'model.weights', message: `the uploaded weights do not fit the model: ${(err as Error).message}` }], source);
  }
  const theta = initParams(spec).data;
  theta.set(model, 0);
  return theta;
}

/**
 * Checkpoint 0 of a run that starts from uploaded weights, written before the run starts: the
 * durable copy of θ₀ (the upload itself lives only in the coordinator's memory), so a restarted
 * coordinator resumes the run from it like from any checkpoint.
 */
export async function storeInitialCheckpoint(
  store: Pick<RunStore, 'putCheckpoint'>,
  runId: string,
  spec: RunSpec,
  params: Float32Array,
  createdMs: number,
): Promise<CheckpointData> {
  const cp: CheckpointData = {
    runId,
    step: 0,
    specJson: specToJson(spec),
    params,
    optimizer: createOptimizer(spec, params.length).state(),
    createdMs,
    sampler: samplerState(spec.seed, 0),
  };
  await store.putCheckpoint(runId, 0, encodeCheckpoint(cp, paramLayout(spec)));
  return cp;
}
