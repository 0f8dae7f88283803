/**
 * Direct access to libtensorflow for the worker's `tensorflow`-backend kernels: a kernel here runs
 * one or more TensorFlow ops through tfjs-node's binding (`executeOp`) itself, so the tfjs engine
 * sees one kernel (one tape node, one set of bookkeeping) where a composite of tfjs ops would cost
 * a tape node, a TensorInfo, an attribute list and a JS ↔ C++ crossing per op.
 *
 * What is used of tfjs-node (4.22, pinned): the backend's `binding` (executeOp, createTensor,
 * deleteTensor and its TF_* constants), `getInputTensorIds` (TensorInfo → TF handle id, uploading
 * values tfjs-node had delayed) and `createOutputTensor` (registers a TF handle as a TensorInfo).
 * `nativeBackend()` checks that these exist, so an incompatible tfjs-node fails with a clear error
 * at registration instead of inside a shard.
 *
 * Intermediates that never become tfjs tensors are raw handle ids, deleted by the kernel that made
 * them (`NativeOps.release`). Small int32 vectors that ops take as inputs (shapes for Reshape, axes
 * for reductions) are made once per value and kept (`constInt32`): tfjs-node makes a new tensor
 * for each call.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../../errors.js';

export interface TfAttr {
  readonly name: string;
  readonly type: number;
  readonly value: boolean | number | string | number[];
}

interface TensorMetadata {
  readonly id: number;
  readonly shape: number[];
  readonly dtype: number;
}

interface Binding {
  executeOp(opName: string, attrs: TfAttr[], inputIds: number[], numOutputs: number): TensorMetadata[];
  createTensor(shape: number[], dtype: number, values: Int32Array | Float32Array): number;
  deleteTensor(id: number): void;
  isUsingGpuDevice(): boolean;
  readonly TF_FLOAT: number;
  readonly TF_INT32: number;
  readonly TF_BOOL: number;
  readonly TF_ATTR_STRING: number;
  readonly TF_ATTR_INT: number;
  readonly TF_ATTR_FLOAT: number;
  readonly TF_ATTR_BOOL: number;
  readonly TF_ATTR_TYPE: number;
}

export interface NativeBackendLike {
  readonly binding: Binding;
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  createOutputTensor(metadata: TensorMetadata): tf.TensorInfo;
  incRef(dataId: tf.DataId): void;
}

/** A raw TF handle: an op output that is not (yet) a tfjs tensor. */
export type Handle = TensorMetadata;

/** An input of a native op: a TensorInfo of the backend, a raw handle or a kept constant's id. */
export type NativeInput = tf.TensorInfo | Handle | number;

export interface NativeOps {
  readonly backend: NativeBackendLike;
  readonly binding: Binding;
  /** Run a TF op, outputs as raw handles (release them, or wrap one with `wrap`). */
  raw(op: string, attrs: TfAttr[], inputs: readonly NativeInput[], numOutputs?: number): Handle[];
  /** Run a TF op with one output, returned as a TensorInfo of the backend. */
  run(op: string, attrs: TfAttr[], inputs: readonly NativeInput[]): tf.TensorInfo;
  /** Register a raw handle as a TensorInfo (the backend owns it from then on). */
  wrap(h: Handle): tf.TensorInfo;
  /** Delete raw handles made by `raw`. */
  release(...handles: Handle[]): void;
  /** A kept int32 vector (shape or axes operand; `shape` to give it another, e.g. [] for a scalar); never release it. */
  constInt32(values: readonly number[], shape?: readonly number[]): number;
  /** A kept float32 scalar or empty vector (`[]` for an empty one); never release it. */
  constFloat(value: number | readonly []): number;
  /** A kept float32 tensor of `shape` holding `values`; never release it. */
  constFloats(values: readonly number[], shape: readonly number[]): number;
  /** Attribute helpers. */
  readonly attr: {
    readonly T: TfAttr;
    type(name: string, dtype: 'float32' | 'int32' | 'bool'): TfAttr;
    int(name: string, value: number | number[]): TfAttr;
    float(name: string, value: number): TfAttr;
    bool(name: string, value: boolean): TfAttr;
    str(name: string, value: string): TfAttr;
  };
}

const cache = new WeakMap<object, NativeOps>();

function isNativeBackend(b: unknown): b is NativeBackendLike {
  const n = b as Partial<NativeBackendLike> | null;
  return (
    n !== null &&
    typeof n === 'object' &&
    typeof n.getInputTensorIds === 'function' &&
    typeof n.createOutputTensor === 'function' &&
    typeof n.incRef === 'function' &&
    typeof n.binding?.executeOp === 'function' &&
    typeof n.binding.createTensor === 'function' &&
    typeof n.binding.deleteTensor === 'function'
  );
}

/** The native helpers of a tfjs-node backend instance (what a kernel's `backend` argument is). */
export function nativeOps(backend: unknown): NativeOps {
  if (!isNativeBackend(backend)) {
    throw new KernelSetupError('tensorflow kernels: the active backend is not tfjs-node 4.22 (no binding.executeOp / getInputTensorIds / createOutputTensor)');
  }
  let ops = cache.get(backend);
  if (ops) return ops;
  // The binding is looked up per call, not kept: a profiler may wrap it (bench/lib/profile-shard.mjs).
  const b = backend.binding;
  const bind = () => backend.binding;
  const ints = new Map<string, number>();
  const floats = new Map<string, number>();
  const ids = (inputs: readonly NativeInput[]): number[] => {
    const out = new Array<number>(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const t = inputs[i]!;
      out[i] = typeof t === 'number' ? t : 'dataId' in t ? backend.getInputTensorIds([t])[0]! : t.id;
    }
    return out;
  };
  const dtypes = { float32: b.TF_FLOAT, int32: b.TF_INT32, bool: b.TF_BOOL };
  ops = {
    backend,
    binding: b,
    raw: (op, attrs, inputs, numOutputs = 1) => bind().executeOp(op, attrs, ids(inputs), numOutputs),
    run: (op, attrs, inputs) => backend.createOutputTensor(bind().executeOp(op, attrs, ids(inputs), 1)[0]!),
    wrap: (h) => backend.createOutputTensor(h),
    release: (...handles) => {
      const bb = bind();
      for (const h of handles) bb.deleteTensor(h.id);
    },
    constInt32: (values, shape = [values.length]) => {
      const key = `${values.join(',')}/${shape.join(',')}`;
      let id = ints.get(key);
      if (id === undefined) ints.set(key, (id = b.createTensor([...shape], b.TF_INT32, Int32Array.from(values))));
      return id;
    },
    constFloat: (value) => {
      const key = typeof value === 'number' ? String(value) : '[]';
      let id = floats.get(key);
      if (id === undefined) {
        id = typeof value === 'number' ? b.createTensor([], b.TF_FLOAT, Float32Array.of(value)) : b.createTensor([0], b.TF_FLOAT, new Float32Array(0));
        floats.set(key, id);
      }
      return id;
    },
    constFloats: (values, shape) => {
      const key = `${values.join(',')}/${shape.join(',')}`;
      let id = floats.get(key);
      if (id === undefined) floats.set(key, (id = b.createTensor([...shape], b.TF_FLOAT, Float32Array.from(values))));
      return id;
    },
    attr: {
      T: { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
      type: (name, dtype) => ({ name, type: b.TF_ATTR_TYPE, value: dtypes[dtype] }),
      int: (name, value) => ({ name, type: b.TF_ATTR_INT, value }),
      float: (name, value) => ({ name, type: b.TF_ATTR_FLOAT, value }),
      bool: (name, value) => ({ name, type: b.TF_ATTR_BOOL, value }),
      str: (name, value) => ({ name, type: b.TF_ATTR_STRING, value }),
    },
  };
  cache.set(backend, ops);
  return ops;
}

/** True when `backend` is tfjs-node's and its TensorFlow runs on a CPU (where these kernels were measured). */
export function isNativeCpuBackend(backend: unknown): boolean {
  return isNativeBackend(backend) && !backend.binding.isUsingGpuDevice();
}
