/**
 * MaxPoolGrad: dx = dy scattered to each window's first maximum of x (row-major over the window,
 * padding never wins), the tap tfjs-backend-cpu picks. One pass over the windows with flat
 * Float32Array indexing and the channel axis innermost (contiguous): memory-bound, for cpu
 * (whose own kernel goes through TensorBuffer.get) and wasm (whose own C++ kernel was measured
 * ~25× slower than its forward MaxPool). On wasm with channels a multiple of 4 the same pass runs
 * as SIMD wasm on the backend's heap instead (pool-grad-simd.ts, pool-grad.wat).
 * Windows that do not overlap (stride ≥ filter: the Conv4 2×2/2 pool) with inputs ≥ 0 and not NaN
 * (after ReLU) take a branch-free integer path first (maxPoolGradDisjoint): `if (v > best)` on
 * activations mispredicts about every other comparison. Kernel alone, x [80,28,28,64] 2×2/2:
 * ~27 → ~7.5 ms (forward MaxPool ~5.4 ms); other inputs and overlapping windows: the generic loop.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ioFor, type TensorInfo, type TrainingBackend } from './io.js';
import { simdPoolShape, wasmPoolGrad } from './pool-grad-simd.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

let best = new Float64Array(0);
let where = new Int32Array(0);

function maxPoolGrad(backendName: TrainingBackend, args: Args): TensorInfo {
  const io = ioFor(backendName, args.backend);
  const dyInfo = args.inputs.dy!;
  const xInfo = args.inputs.input!;
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const p = tf.backend_util.computePool2DInfo(xInfo.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  // Windows that do not overlap: the integer path below writes every element of dx once, so dx
  // need not be zero-filled first, unless some pixels are in no window (odd sizes, gaps): zeroing
  // those one by one after the fact costs more than the allocator's memset (x [80,7,7,64]: ~0.4×
  // the forward pool). The generic loop zeroes dx itself.
  const disjoint = p.strideHeight >= p.filterHeight && p.strideWidth >= p.filterWidth;
  const zeroed = !(disjoint && coverage(p).all);
  const out = io.alloc(xInfo.shape, zeroed && backendName === 'cpu');
  const simd = backendName === 'wasm' && simdPoolShape(p) ? wasmPoolGrad(args.backend) : undefined;
  if (simd && xInfo.dtype === 'float32' && dyInfo.dtype === 'float32') {
    simd.maxPoolGrad(xInfo, dyInfo, out, io.view(out), p);
    return out;
  }
  const x = io.view(xInfo);
  const dy = io.view(dyInfo);
  const dx = io.view(out);
  if (!(disjoint && maxPoolGradDisjoint(x, dy, dx, p, zeroed && backendName === 'cpu'))) maxPoolGradGeneric(x, dy, dx, p);
  return out;
}

/** dx ← MaxPoolGrad, any windows and values: zero, then `if (v > best)` per tap and dx[first max] += dy. */
export function maxPoolGradGeneric(x: Float32Array, dy: Float32Array, dx: Float32Array, p: tf.backend_util.Conv2DInfo): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = p;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = p;
  const top = p.padInfo.top;
  const left = p.padInfo.left;
  dx.fill(0);
  if (best.length < C) {
    best = new Float64Array(C);
    where = new Int32Array(C);
  }
  const b = best;
  const at = where;
  let o = 0;
  for (let n = 0; n < N; n++) {
    const xN = n * H * W * C;
    for (let i = 0; i < OH; i++) {
      const h0 = i * SH - top;
      for (let j = 0; j < OW; j++, o += C) {
        const w0 = j * SW - left;
        for (let c = 0; c < C; c++) {
          b[c] = Number.NEGATIVE_INFINITY;
          at[c] = -1;
        }
        for (let kh = 0; kh < FH; kh++) {
          const h = h0 + kh;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < FW; kw++) {
            const w = w0 + kw;
            if (w < 0 || w >= W) continue;
            const base = xN + (h * W + w) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c]!;
              if (v > b[c]!) {
                b[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        for (let c = 0; c < C; c++) {
          const k = at[c]!;
          if (k >= 0) dx[k] = dx[k]! + dy[o + c]!;
        }
      }
    }
  }
}

let runMax = new Int32Array(0);
let runAt = new Int32Array(0);

/** Rows and columns of x that some window covers (`all`: every pixel is in a window), and the columns no window covers. */
function coverage(p: tf.backend_util.Conv2DInfo): { rowIn: Uint8Array; gapCols: number[]; all: boolean } {
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = p;
  const top = p.padInfo.top;
  const left = p.padInfo.left;
  const rowIn = new Uint8Array(H);
  const colIn = new Uint8Array(W);
  for (let i = 0; i < OH; i++) for (let h = Math.max(0, i * SH - top); h < Math.min(H, i * SH - top + FH); h++) rowIn[h] = 1;
  for (let j = 0; j < OW; j++) for (let w = Math.max(0, j * SW - left); w < Math.min(W, j * SW - left + FW); w++) colIn[w] = 1;
  const gapCols: number[] = [];
  for (let w = 0; w < W; w++) if (!colIn[w]) gapCols.push(w);
  return { rowIn, gapCols, all: gapCols.length === 0 && rowIn.every((r) => r === 1) };
}

/**
 * dx (any contents unless `dxZeroed`; every element written once) ← MaxPoolGrad for windows that do not overlap
 * (stride ≥ filter, so each x is in at most one window), when every x is ≥ 0 and not NaN: there
 * float32 bit patterns order like the values (their differences fit in int32), so the window max
 * and which tap holds it come from integer arithmetic on Int32Array views, branch-free: with
 * d = m − v, s = d >> 31 is −1 exactly when v > m (a strictly larger later tap takes over: the first
 * maximum in row-major order wins, as in the generic loop), and dx = dy & mask copies dy's bits to
 * the winner and +0 to the other taps (dy = −0 as +0, as `0 + dy` in the generic loop). x in no
 * window (rows/columns past the last window, gaps when stride > filter) get +0 (left alone if `dxZeroed`).
 * Any x with the sign bit set (negative, −0, −NaN) or a NaN is noted on the way (`any` < 0, checked
 * after each row of windows) and returns false after a partial write: the caller runs the generic loop.
 */
export function maxPoolGradDisjoint(x: Float32Array, dy: Float32Array, dx: Float32Array, p: tf.backend_util.Conv2DInfo, dxZeroed = false): boolean {
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length);
  const dyi = new Int32Array(dy.buffer, dy.byteOffset, dy.length);
  const dxi = new Int32Array(dx.buffer, dx.byteOffset, dx.length);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = p;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = p;
  const top = p.padInfo.top;
  const left = p.padInfo.left;
  const { rowIn, gapCols, all } = coverage(p);
  const zero = !dxZeroed && !all;
  // 2×2 windows: those of output columns [jLo, jHi) lie inside the image (partial ones at the edges).
  const twoByTwo = FH === 2 && FW === 2;
  const jLo = Math.min(OW, Math.ceil(left / SW));
  const jHi = Math.max(jLo, Math.min(OW, Math.floor((W - 2 + left) / SW) + 1));
  if (runMax.length < C) {
    runMax = new Int32Array(C);
    runAt = new Int32Array(C);
  }
  let any = 0; // < 0 once an x with the sign bit set or a NaN (window max > 0x7f800000) was seen
  for (let n = 0; n < N; n++) {
    const xN = n * H * W * C;
    for (let h = 0; zero && h < H; h++) {
      const row = xN + h * W * C;
      if (!rowIn[h]) dx.fill(0, row, row + W * C);
      else for (const w of gapCols) dx.fill(0, row + w * C, row + (w + 1) * C);
    }
    for (let i = 0; i < OH; i++) {
      const r0 = i * SH - top;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(H, r0 + FH);
      const o = ((n * OH + i) * OW) * C;
      if (twoByTwo && rMax - rMin === 2) {
        if (jHi > jLo) any |= rowOf2x2(xi, dyi, dxi, xN + (rMin * W + jLo * SW - left) * C, o + jLo * C, jHi - jLo, C, SW * C, W * C);
        for (let j = 0; j < jLo; j++) any |= windowGrad(xi, dyi, dxi, p, xN, rMin, rMax, j, o + j * C);
        for (let j = jHi; j < OW; j++) any |= windowGrad(xi, dyi, dxi, p, xN, rMin, rMax, j, o + j * C);
      } else {
        for (let j = 0; j < OW; j++) any |= windowGrad(xi, dyi, dxi, p, xN, rMin, rMax, j, o + j * C);
      }
      if (any < 0) return false;
    }
  }
  return true;
}

/**
 * One row of `count` full 2×2 windows, the first at x offset p0 (then every `step`), dy at o. Taps
 * a b / e f; s1: b > a; s2: e > max(a, b); s3: f > max(a, b, e). Returns the OR of every tap and of
 * 0x7f800000 − max (< 0: a sign bit or a NaN).
 */
function rowOf2x2(xi: Int32Array, dyi: Int32Array, dxi: Int32Array, p0: number, o: number, count: number, C: number, step: number, rowStride: number): number {
  let any = 0;
  const rc = rowStride + C;
  for (let k = 0; k < count; k++, p0 += step, o += C) {
    const end = p0 + C;
    for (let q = p0, u = o; q < end; q++, u++) {
      const a = xi[q]!;
      const b = xi[q + C]!;
      const e = xi[q + rowStride]!;
      const f = xi[q + rc]!;
      let d = (a - b) | 0;
      const s1 = d >> 31;
      let m = (a - (d & s1)) | 0;
      d = (m - e) | 0;
      const s2 = d >> 31;
      m = (m - (d & s2)) | 0;
      d = (m - f) | 0;
      const s3 = d >> 31;
      m = (m - (d & s3)) | 0;
      any |= a | b | e | f | ((0x7f800000 - m) | 0);
      let g = dyi[u]!;
      g &= -(g ^ -0x80000000) | 0x7fffffff; // −0 → +0
      // dy to f if s3, else to e if s2, else to b if s1, else to a.
      const gf = g & s3;
      g ^= gf;
      const ge = g & s2;
      g ^= ge;
      const gb = g & s1;
      dxi[q] = g ^ gb;
      dxi[q + C] = gb;
      dxi[q + rowStride] = ge;
      dxi[q + rc] = gf;
    }
  }
  return any;
}

/** Any window (output column j, rows [rMin, rMax)): running max and the index of the tap holding it, per channel. */
function windowGrad(xi: Int32Array, dyi: Int32Array, dxi: Int32Array, p: tf.backend_util.Conv2DInfo, xN: number, rMin: number, rMax: number, j: number, o: number): number {
  const { inWidth: W, inChannels: C } = p;
  const c0 = j * p.strideWidth - p.padInfo.left;
  const cMin = Math.max(0, c0);
  const cMax = Math.min(W, c0 + p.filterWidth);
  if (rMax <= rMin || cMax <= cMin) return 0; // all padding: no maximum, dy dropped
  const mx = runMax;
  const at = runAt;
  let any = 0;
  let t = 0;
  for (let r = rMin; r < rMax; r++) {
    for (let q = cMin; q < cMax; q++, t++) {
      const base = xN + (r * W + q) * C;
      if (t === 0) {
        for (let c = 0; c < C; c++) {
          const v = xi[base + c]!;
          any |= v;
          mx[c] = v;
          at[c] = 0;
        }
        continue;
      }
      for (let c = 0; c < C; c++) {
        const v = xi[base + c]!;
        const m = mx[c]!;
        any |= v;
        const d = (m - v) | 0;
        const s = d >> 31;
        mx[c] = (m - (d & s)) | 0;
        at[c] = at[c]! ^ ((at[c]! ^ t) & s);
      }
    }
  }
  for (let c = 0; c < C; c++) any |= (0x7f800000 - mx[c]!) | 0;
  t = 0;
  for (let r = rMin; r < rMax; r++) {
    for (let q = cMin; q < cMax; q++, t++) {
      const base = xN + (r * W + q) * C;
      for (let c = 0; c < C; c++) {
        let g = dyi[o + c]!;
        g &= -(g ^ -0x80000000) | 0x7fffffff;
        const u = at[c]! ^ t; // 0 iff this tap holds the max
        dxi[base + c] = g & ~((u | -u) >> 31);
      }
    }
  }
  return any;
}

export const maxPoolGradCpuConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'cpu',
  kernelFunc: (args: Args) => maxPoolGrad('cpu', args),
};

export const maxPoolGradWasmConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: (args: Args) => maxPoolGrad('wasm', args),
};
