/**
 * What a training kernel needs from the backend it runs on, for the two JS-hosted backends:
 * float32 views of its inputs, outputs it fills in place, and the backend's own kernels (run
 * directly, so nothing is recorded on a gradient tape: a kernel is one node for autodiff).
 *
 * wasm: views are windows onto the wasm heap, which an allocation may grow (and detach), so a
 * kernel allocates every output it needs first and takes views afterwards.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';
import { takeCpuOutput } from './cpu-buffers.js';

export type TrainingBackend = 'cpu' | 'wasm';
export type TensorInfo = tf.TensorInfo;

export interface KernelIo {
  readonly backendName: TrainingBackend;
  /**
   * A new float32 tensor of `shape` (zero-filled on cpu unless `zero` is false, for a kernel that
   * writes every element; uninitialised on wasm).
   */
  alloc(shape: readonly number[], zero?: boolean): TensorInfo;
  /** The float32 contents of a tensor, not copied (wasm: valid until the next alloc or run). */
  view(t: TensorInfo): Float32Array;
  /** Release an intermediate made by alloc() or run(). */
  dispose(t: TensorInfo): void;
  /** Run the backend's own registered kernel `name` (no tape, no engine bookkeeping). */
  run(name: string, inputs: Record<string, TensorInfo>, attrs: object): TensorInfo;
}

interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } | undefined };
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: unknown): TensorInfo;
  disposeIntermediateTensorInfo(t: TensorInfo): void;
}

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): ArrayBufferView;
  disposeData(dataId: object): boolean;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function runOn(backendName: TrainingBackend, backend: unknown, name: string, inputs: Record<string, TensorInfo>, attrs: object): TensorInfo {
  const config = tf.getKernel(name, backendName);
  if (!config) throw new KernelSetupError(`training kernel: the ${backendName} backend has no ${name} kernel`);
  const out = config.kernelFunc({ inputs, backend: backend as tf.KernelBackend, attrs: attrs as tf.NamedAttrMap });
  if (Array.isArray(out)) throw new KernelSetupError(`training kernel: ${name} returned ${out.length} outputs, expected one`);
  return out;
}

export function ioFor(backendName: TrainingBackend, backend: unknown): KernelIo {
  if (backendName === 'cpu') {
    const b = backend as CpuBackendLike;
    return {
      backendName,
      alloc: (shape, zero = true) => takeCpuOutput(backend, shape, size(shape), zero),
      view: (t) => {
        if (t.dtype !== 'float32') throw new KernelSetupError(`training kernel: expected float32, got ${t.dtype}`);
        const v = b.data.get(t.dataId)?.values ?? b.readSync(t.dataId);
        return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
      },
      dispose: (t) => b.disposeIntermediateTensorInfo(t),
      run: (name, inputs, attrs) => runOn(backendName, backend, name, inputs, attrs),
    };
  }
  const b = backend as WasmBackendLike;
  return {
    backendName,
    alloc: (shape) => b.makeOutput([...shape], 'float32'),
    view: (t) => {
      if (t.dtype !== 'float32') throw new KernelSetupError(`training kernel: expected float32, got ${t.dtype}`);
      return b.typedArrayFromHeap(t) as Float32Array;
    },
    dispose: (t) => void b.disposeData(t.dataId),
    run: (name, inputs, attrs) => runOn(backendName, backend, name, inputs, attrs),
  };
}
