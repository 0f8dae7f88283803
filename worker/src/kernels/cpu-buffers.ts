/**
 * Recycled output buffers for the cpu training kernels. Every cpu kernel output is a fresh
 * Float32Array; a first-order Conv4 5w1s task allocates ~670 MB of them in ~540 outputs (a
 * block-1 activation of the 75 query images is 15 MB), and fresh memory from the allocator costs
 * page faults and zeroing on first write: a 15 MB allocation + first write ~5 ms against 0.3 ms for
 * rewriting a buffer already mapped (measured here), so memory-bound kernels (ReLU, batch-norm
 * arithmetic) spent most of their time on it. Recycling took the task from ~2.53 to ~2.15 CPU s.
 *
 * The pool: outputs the training kernels allocate (`take`) are returned when the cpu backend
 * deletes their data (the tensor's last reference disposed), and handed out again, zero-filled,
 * for the next output of the same length. Only arrays that provably nobody else can see are
 * recycled; an array is never recycled once
 *  - it was read through the backend's readSync/read (dataSync, data, arraySync, bufferSync, and
 *    every upstream kernel reading through them), which return the backend's own array, or
 *  - a second data entry referred to its memory (a kernel aliasing it, e.g. a contiguous Slice
 *    returning a subarray, or a `move`).
 * Capped (POOL_BYTES by default: arrays of other lengths are evicted first, oldest first);
 * `drainCpuBufferPool()` drops everything held.
 */

interface CpuEntry {
  values?: unknown;
}

interface CpuBackendHooks {
  data: { get(dataId: object): CpuEntry | undefined; has(dataId: object): boolean; set(dataId: object, v: CpuEntry): void };
  readSync(dataId: object): unknown;
  read(dataId: object): Promise<unknown>;
  disposeData(dataId: object, force?: boolean): boolean;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): { dataId: object; shape: number[]; dtype: 'float32' };
}

/**
 * Most bytes kept for reuse by default. A Conv4 5w1s task frees ~510 MB of kernel outputs at its
 * end; 512 MB holds them (measured: 256 MB left ~8% of the gain).
 */
export const POOL_BYTES = 512 * 2 ** 20;
let limit = POOL_BYTES;

/** ArrayBuffers of arrays made by take(): buffer → its array. */
const owned = new WeakMap<ArrayBuffer, Float32Array>();
/** Arrays seen outside the kernels (never recycled). */
const escaped = new WeakSet<Float32Array>();
/** The array being registered by take() right now (its own data.set is not an alias). */
let registering: Float32Array | undefined;

const free = new Map<number, Float32Array[]>();
let freeBytes = 0;
const hooked = new WeakSet<object>();

function markRead(v: unknown): void {
  if (v instanceof Float32Array) {
    const a = owned.get(v.buffer as ArrayBuffer);
    if (a) escaped.add(a);
  }
}

function hook(b: CpuBackendHooks): void {
  if (hooked.has(b)) return;
  hooked.add(b);
  // The backend's own methods are saved and always invoked with .call(this) from their wrappers.
  /* eslint-disable @typescript-eslint/unbound-method */
  const readSync = b.readSync;
  b.readSync = function (dataId: object) {
    const v = readSync.call(this, dataId);
    markRead(v);
    return v;
  };
  const read = b.read;
  b.read = async function (dataId: object) {
    const v = await read.call(this, dataId);
    markRead(v);
    return v;
  };
  const data = b.data;
  const set = data.set;
  data.set = function (dataId: object, v: CpuEntry) {
    const values = v?.values;
    if (ArrayBuffer.isView(values)) {
      const a = owned.get(values.buffer as ArrayBuffer);
      if (a && a !== registering) escaped.add(a);
    }
    return set.call(this, dataId, v);
  };
  const disposeData = b.disposeData;
  b.disposeData = function (dataId: object, force?: boolean) {
    const entry = data.has(dataId) ? data.get(dataId) : undefined;
    const r = disposeData.call(this, dataId, force);
    if (entry && !data.has(dataId)) release(entry.values);
    return r;
  };
  /* eslint-enable @typescript-eslint/unbound-method */
}

function release(values: unknown): void {
  if (!(values instanceof Float32Array)) return;
  if (owned.get(values.buffer as ArrayBuffer) !== values || escaped.has(values)) return;
  if (values.byteLength > limit) return;
  // Over the cap: evict other lengths first (oldest first), then older arrays of this length.
  for (const [len, l] of free) {
    if (freeBytes + values.byteLength <= limit) break;
    if (len === values.length) continue;
    while (l.length > 0 && freeBytes + values.byteLength > limit) freeBytes -= l.shift()!.byteLength;
    if (l.length === 0) free.delete(len);
  }
  const same = free.get(values.length);
  while (same && same.length > 0 && freeBytes + values.byteLength > limit) freeBytes -= same.shift()!.byteLength;
  let list = free.get(values.length);
  if (!list) free.set(values.length, (list = []));
  list.push(values);
  freeBytes += values.byteLength;
}

/**
 * A zero-filled float32 tensor of `shape` on the cpu backend `backend`, its memory recycled when
 * possible. `zero` false: a recycled array keeps its old contents (for a kernel that overwrites
 * every element).
 */
export function takeCpuOutput(backend: unknown, shape: readonly number[], size: number, zero = true): { dataId: object; shape: number[]; dtype: 'float32' } {
  const b = backend as CpuBackendHooks;
  hook(b);
  const list = free.get(size);
  let a = list?.pop();
  if (a) {
    freeBytes -= a.byteLength;
    if (zero) a.fill(0);
  } else {
    a = new Float32Array(size);
    owned.set(a.buffer as ArrayBuffer, a);
  }
  registering = a;
  try {
    return b.makeTensorInfo([...shape], 'float32', a);
  } finally {
    registering = undefined;
  }
}

/** Set the most bytes kept for reuse (drains the pool); returns the previous limit. */
export function setCpuBufferPoolLimit(bytes: number): number {
  const before = limit;
  limit = bytes;
  drainCpuBufferPool();
  return before;
}

/** Drop every buffer held for reuse. */
export function drainCpuBufferPool(): void {
  free.clear();
  freeBytes = 0;
}

/** Bytes currently held for reuse. */
export function cpuBufferPoolBytes(): number {
  return freeBytes;
}
