/**
 * UnsortedSegmentSum (float32 data, int32 segment ids over the leading axis) for wasm, which has
 * none upstream. It is the gradient of GatherV2: an Embedding layer's backward pass (and, being
 * linear, its gradient is a gather again, so second-order MAML through an Embedding needs nothing
 * more). out[s, …] = Σ over rows i with ids[i] = s of x[i, …]; rows with an id outside
 * [0, numSegments) are dropped, as TensorFlow does. Rows are added in order (deterministic).
 */
import * as tf from '@tensorflow/tfjs-core';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): ArrayBufferView;
}

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** out (zeroed, numSegments × inner) += x's rows (rows × inner) at their ids. */
export function segmentSum(x: Float32Array, ids: ArrayLike<number>, inner: number, numSegments: number, out: Float32Array): void {
  out.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let k = 0; k < inner; k++) out[dst + k]! += x[src + k]!;
  }
}

function unsortedSegmentSumWasm({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const x = inputs.x!;
  const ids = inputs.segmentIds!;
  const numSegments = Number((attrs as { numSegments: number }).numSegments);
  const rows = ids.shape.reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(ids.shape.length).reduce((a, b) => a * b, 1);
  if (x.dtype !== 'float32' || ids.dtype !== 'int32') throw new TypeError(`UnsortedSegmentSum (wasm): float32 data and int32 ids, got ${x.dtype} and ${ids.dtype}`);
  const b = backend as WasmBackendLike;
  // Allocate first: an allocation may grow the heap and detach earlier views.
  const out = b.makeOutput([numSegments, ...x.shape.slice(ids.shape.length)], 'float32');
  const xv = b.typedArrayFromHeap(x) as Float32Array;
  const iv = b.typedArrayFromHeap(ids) as Int32Array;
  segmentSum(xv.subarray(0, rows * inner), iv, inner, numSegments, b.typedArrayFromHeap(out) as Float32Array);
  return out;
}

export const unsortedSegmentSumWasmConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: (args: Args) => unsortedSegmentSumWasm(args),
};
