/**
 * SIMD wasm kernels that run on tfjs-backend-wasm's own heap: a small module (a .wat of this folder,
 * built into dist/kernels/<name>.wasm by scripts/build-wasm.mjs) instantiated against the backend's
 * WebAssembly.Memory (its emscripten Module exports it as `asm.memory`), so it reads and writes
 * tensors where they already live — no copies; a tensor is passed as its byte offset (at()).
 * One compile per module file, one instance per backend; when the memory cannot be reached, or the
 * module does not load, status() says why and the caller runs its fallback.
 */
import { readFileSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';

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

/** A module's exports bound to one backend's heap. */
export interface HeapModule<E> {
  readonly exports: E;
  /** The byte offset of a tensor's data on the heap. */
  readonly at: (t: tf.TensorInfo) => number;
}

export interface HeapKernels<E> {
  /** The module bound to this wasm backend's heap, or undefined (status() says why). */
  get(backend: unknown): HeapModule<E> | undefined;
  /** 'simd' when the module runs on this backend, else why not. */
  status(backend: unknown): string;
}

/** The backend's WebAssembly.Memory: the one whose buffer is its HEAPU8's. */
function memoryOf(b: WasmBackendLike): WasmMemory | string {
  const m = b.wasm;
  if (!m?.HEAPU8 || !b.dataIdMap) return 'not a tfjs-backend-wasm backend (no wasm.HEAPU8 / dataIdMap)';
  for (const c of [m.asm?.memory, m.wasmExports?.memory, m.wasmMemory]) {
    if (c instanceof WASM.Memory && c.buffer === m.HEAPU8.buffer) {
      // The threaded build's memory is shared; the modules import an unshared one.
      if (typeof SharedArrayBuffer !== 'undefined' && c.buffer instanceof SharedArrayBuffer) return 'the backend memory is shared (threaded build)';
      return c;
    }
  }
  return 'the backend does not expose its WebAssembly.Memory (asm.memory, wasmExports.memory, wasmMemory)';
}

/** Kernels of dist/kernels/`file` (e.g. 'pool-grad.wasm'), bound per backend on first use. */
export function heapKernels<E>(file: string): HeapKernels<E> {
  let compiled: WasmModule | Error | undefined;
  const bound = new WeakMap<object, HeapModule<E> | string>();
  const module = (): WasmModule => {
    if (compiled === undefined) {
      try {
        compiled = new WASM.Module(readFileSync(new URL(`./${file}`, import.meta.url)));
      } catch (err) {
        compiled = err instanceof Error ? err : new Error(String(err));
      }
    }
    if (compiled instanceof Error) throw compiled;
    return compiled;
  };
  const bind = (b: WasmBackendLike): HeapModule<E> | string => {
    const memory = memoryOf(b);
    if (typeof memory === 'string') return memory;
    let exports: E;
    try {
      exports = new WASM.Instance(module(), { env: { memory } }).exports as unknown as E;
    } catch (err) {
      return `${file} does not load: ${err instanceof Error ? err.message : String(err)}`;
    }
    return {
      exports,
      at: (t: tf.TensorInfo) => {
        const d = b.dataIdMap!.get(t.dataId);
        if (d === undefined) throw new KernelSetupError('training kernel: tensor not on the wasm heap');
        return d.memoryOffset;
      },
    };
  };
  const boundTo = (backend: unknown): HeapModule<E> | string => {
    if (typeof backend !== 'object' || backend === null) return 'no backend';
    let r = bound.get(backend);
    if (r === undefined) {
      r = bind(backend);
      bound.set(backend, r);
    }
    return r;
  };
  return {
    get: (backend) => {
      const r = boundTo(backend);
      return typeof r === 'string' ? undefined : r;
    },
    status: (backend) => {
      const r = boundTo(backend);
      return typeof r === 'string' ? r : 'simd';
    },
  };
}
