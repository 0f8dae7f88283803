/**
 * The wasm backend's MaxPoolGrad/AvgPoolGrad as SIMD wasm (pool-grad.wat, built into
 * dist/kernels/pool-grad.wasm): a small module instantiated against tfjs-backend-wasm's own
 * WebAssembly.Memory (its emscripten Module exports it as `asm.memory`), so it reads x and dy and
 * writes dx where they already live on the backend's heap — no copies, one pass, f32x4 over the
 * channel axis. Needs C % 4 == 0; the callers keep their JS loops for other C and for a backend
 * whose memory cannot be reached (then wasmPoolGradStatus() says why).
 */
import { readFileSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs-core';

type PoolInfo = tf.backend_util.Conv2DInfo;

/** The part of the WebAssembly JS API used here (the project's lib has no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBufferLike;
}
interface WasmModule {
  readonly __wasmModule?: never;
}
const WASM = (globalThis as unknown as {
  WebAssembly: {
    Module: new (bytes: Uint8Array) => WasmModule;
    Instance: new (module: WasmModule, imports: object) => { readonly exports: object };
    Memory: new (descriptor: { initial: number }) => WasmMemory;
  };
}).WebAssembly;

interface WasmBackendLike {
  wasm?: { HEAPU8?: Uint8Array; asm?: { memory?: unknown }; wasmExports?: { memory?: unknown }; wasmMemory?: unknown };
  dataIdMap?: { get(dataId: object): { memoryOffset: number } | undefined };
}

interface Exports {
  max_pool_grad(x: number, dy: number, dx: number, ...dims: number[]): void;
  avg_pool_grad(dy: number, dx: number, ...dimsScaleAcc: number[]): void;
  zero_uncovered(dx: number, ...dimsCols: number[]): void;
}

export interface WasmPoolGrad {
  /** dx (allocated, any contents) = MaxPoolGrad(x, dy); `dxView` is dx's heap view for zeroing. */
  maxPoolGrad(x: tf.TensorInfo, dy: tf.TensorInfo, dx: tf.TensorInfo, dxView: Float32Array, p: PoolInfo): void;
  /** dx (allocated, any contents) = AvgPoolGrad(dy), each share divided by the full window. */
  avgPoolGrad(dy: tf.TensorInfo, dx: tf.TensorInfo, dxView: Float32Array, p: PoolInfo): void;
}

let compiled: WasmModule | Error | undefined;
const bound = new WeakMap<object, WasmPoolGrad | string>();

function module(): WasmModule {
  if (compiled === undefined) {
    try {
      compiled = new WASM.Module(readFileSync(new URL('./pool-grad.wasm', import.meta.url)));
    } catch (err) {
      compiled = err instanceof Error ? err : new Error(String(err));
    }
  }
  if (compiled instanceof Error) throw compiled;
  return compiled;
}

/** The backend's WebAssembly.Memory: the one whose buffer is its HEAPU8's. */
function memoryOf(b: WasmBackendLike): WasmMemory | string {
  const m = b.wasm;
  if (!m?.HEAPU8 || !b.dataIdMap) return 'not a tfjs-backend-wasm backend (no wasm.HEAPU8 / dataIdMap)';
  for (const c of [m.asm?.memory, m.wasmExports?.memory, m.wasmMemory]) {
    if (c instanceof WASM.Memory && c.buffer === m.HEAPU8.buffer) {
      // The threaded build's memory is shared; pool-grad.wat imports an unshared one.
      if (typeof SharedArrayBuffer !== 'undefined' && c.buffer instanceof SharedArrayBuffer) return 'the backend memory is shared (threaded build)';
      return c;
    }
  }
  return 'the backend does not expose its WebAssembly.Memory (asm.memory, wasmExports.memory, wasmMemory)';
}

/** Does some window cover every pixel of this axis (non-overlapping windows, before >= 0)? */
function allCovered(size: number, out: number, filter: number, stride: number, before: number): boolean {
  for (let t = before; t < before + size; t++) if (t >= out * stride || t % stride >= filter) return false;
  return true;
}

function bind(b: WasmBackendLike): WasmPoolGrad | string {
  const memory = memoryOf(b);
  if (typeof memory === 'string') return memory;
  let ex: Exports;
  try {
    ex = new WASM.Instance(module(), { env: { memory } }).exports as unknown as Exports;
  } catch (err) {
    return `pool-grad.wasm does not load: ${err instanceof Error ? err.message : String(err)}`;
  }
  const at = (t: tf.TensorInfo) => {
    const d = b.dataIdMap!.get(t.dataId);
    if (d === undefined) throw new Error('training kernel: tensor not on the wasm heap');
    return d.memoryOffset;
  };
  const dims = (p: PoolInfo) => [
    p.batchSize, p.inHeight, p.inWidth, p.inChannels, p.outHeight, p.outWidth,
    p.filterHeight, p.filterWidth, p.strideHeight, p.strideWidth, p.padInfo.top, p.padInfo.left,
  ];
  /** Store once (and zero what no window covers) when windows do not overlap, else zero and add. */
  const prepare = (dx: tf.TensorInfo, dxView: Float32Array, p: PoolInfo) => {
    if (p.strideHeight < p.filterHeight || p.strideWidth < p.filterWidth) {
      dxView.fill(0);
      return 1;
    }
    const rows = allCovered(p.inHeight, p.outHeight, p.filterHeight, p.strideHeight, p.padInfo.top);
    const cols = allCovered(p.inWidth, p.outWidth, p.filterWidth, p.strideWidth, p.padInfo.left);
    if (!rows || !cols) ex.zero_uncovered(at(dx), ...dims(p), cols ? 0 : 1);
    return 0;
  };
  return {
    maxPoolGrad(x, dy, dx, dxView, p) {
      const acc = prepare(dx, dxView, p);
      ex.max_pool_grad(at(x), at(dy), at(dx), ...dims(p), acc);
    },
    avgPoolGrad(dy, dx, dxView, p) {
      const acc = prepare(dx, dxView, p);
      ex.avg_pool_grad(at(dy), at(dx), ...dims(p), 1 / (p.filterHeight * p.filterWidth), acc);
    },
  };
}

function boundTo(backend: unknown): WasmPoolGrad | string {
  if (typeof backend !== 'object' || backend === null) return 'no backend';
  let r = bound.get(backend);
  if (r === undefined) {
    r = bind(backend as WasmBackendLike);
    bound.set(backend, r);
  }
  return r;
}

/** The SIMD kernels bound to this wasm backend's heap, or undefined (wasmPoolGradStatus says why). */
export function wasmPoolGrad(backend: unknown): WasmPoolGrad | undefined {
  const r = boundTo(backend);
  return typeof r === 'string' ? undefined : r;
}

/** 'simd' when the SIMD kernels run on this backend, else why the JS loops do. */
export function wasmPoolGradStatus(backend: unknown): string {
  const r = boundTo(backend);
  return typeof r === 'string' ? r : 'simd';
}

/** Does this pool take the SIMD path (channels a positive multiple of 4)? */
export function simdPoolShape(p: PoolInfo): boolean {
  return p.inChannels > 0 && p.inChannels % 4 === 0 && p.batchSize * p.inHeight * p.inWidth > 0;
}
