/**
 * Conv2DBackpropInput: dx[n, h, w, ci] = Σ dy[n, i, j, co] · W[kh, kw, ci, co] over h = i·s + kh − top,
 * w = j·s + kw − left.
 *
 * cpu: few input channels (kh·kw·ci < co, and ci ≤ 3 where Winograd applies: a first layer):
 *   dcols = dy · Wᵀ by dyTimesWt (4×3 register blocks, dy read in place), then col2im — Conv4
 *   block 1 (x [80,28,28,1], 64 filters) 66.8 → 17.5 ms kernel alone, forward conv 22.7 ms;
 *   3×3 stride 1 with ≥ 2 output channels: Winograd F(2×2, 3×3) on dy with the flipped filter
 *   (./winograd.ts, as the forward conv); otherwise dcols = dy · Wᵀ with the GEMM of ./gemm.ts, then col2im.
 * wasm (whose own kernel is a scalar C++ loop, ~12× slower than its forward conv): with stride 1
 *   it is a forward convolution of dy with W flipped in space and with ci/co swapped, padded by
 *   fH − 1 − top (XNNPACK). With stride s > 1 the rows h of dx with (h + top) mod s = ph only meet
 *   the filter rows kh ≡ ph (mod s): each of the s² phases is such a stride-1 convolution of dy with
 *   the matching sub-filter (same FLOPs in total as the forward conv), written into its rows and
 *   columns of dx in JS. (Dilated convolutions: dcols = dy · Wᵀ on the backend's BatchMatMul, then
 *   col2im in JS on the heap.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';
import { col2im, colsShape, convInfo, scratchBuffer, type ConvAttrs, type ConvInfo } from './conv-util.js';
import { gemm, rowMajor } from './gemm.js';
import { usesWinograd } from './conv2d.js';
import { ioFor, type KernelIo, type TensorInfo } from './io.js';
import { winogradConv, winogradFilter } from './winograd.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function geometry(args: Args): { dy: TensorInfo; filter: TensorInfo; c: ConvInfo } {
  const dy = args.inputs.dy!;
  const filter = args.inputs.filter!;
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  const c = convInfo(tf.Conv2DBackpropInput, attrs.inputShape, filter.shape, attrs);
  if (dy.shape.join() !== c.outShape.join()) {
    throw new KernelSetupError(`Conv2DBackpropInput: dy has shape [${String(dy.shape)}], the convolution's output is [${String(c.outShape)}]`);
  }
  return { dy, filter, c };
}

/**
 * Fewest input channels for which the Winograd path beats dyTimesWt + col2im (kernel alone, 64
 * filters, 3×3 stride 1, x [80,28,28,C] / [80,14,14,C]): C = 1 66.8 vs 17.5 ms (forward 22.7),
 * C = 2 68.8 vs 36.9, C = 3 66.7 vs 53.7, C = 4 16.9 vs 17.8, C = 6 24.2 vs 26.4.
 */
export const WINOGRAD_BPI_MIN_CHANNELS = 4;

export function conv2dBackpropInputCpu(args: Args): TensorInfo {
  const io = ioFor('cpu', args.backend);
  const { dy, filter, c } = geometry(args);
  const { M, K } = colsShape(c);
  const CO = c.outChannels;
  // Few input channels (K = kh·kw·ci < co: a first layer): dcols = dy · Wᵀ by dyTimesWt, then
  // col2im. Where Winograd (below) applies, only up to WINOGRAD_BPI_MIN_CHANNELS − 1 input channels.
  if (K < CO && (c.inChannels < WINOGRAD_BPI_MIN_CHANNELS || !usesWinograd({ ...c, inChannels: CO }))) {
    const out = io.alloc(c.inShape, false);
    const dcols = scratchBuffer(M * K);
    dyTimesWt(io.view(dy), io.view(filter), M, K, CO, dcols);
    col2im(dcols, c, io.view(out));
    return out;
  }
  const out = io.alloc(c.inShape);
  // 3×3, stride 1: dx is the forward convolution of dy with W flipped in space, ci/co swapped,
  // padded by 2 − top / 2 − left — through Winograd like the forward conv (./conv2d.ts).
  if (usesWinograd({ ...c, inChannels: CO })) {
    const CI = c.inChannels;
    const geo = {
      batch: c.batchSize, inHeight: c.outHeight, inWidth: c.outWidth, inChannels: CO, outChannels: CI,
      outHeight: c.inHeight, outWidth: c.inWidth, top: 2 - c.padInfo.top, left: 2 - c.padInfo.left,
    };
    const v = winogradFilter(io.view(filter), CO, CI, (kh, kw, co, ci) => (((2 - kh) * 3 + (2 - kw)) * CI + ci) * CO + co);
    winogradConv(io.view(dy), geo, v, io.view(out));
    return out;
  }
  const dcols = scratchBuffer(M * K);
  // dcols[M, K] = dy[M, CO] · Wᵀ[CO, K]
  gemm(M, K, CO, rowMajor(io.view(dy), M, CO), rowMajor(io.view(filter), K, CO, true), dcols);
  col2im(dcols, c, io.view(out));
  return out;
}

let wPanels = new Float64Array(0);

/**
 * dcols[M, K] = dy[M, CO] · Wᵀ (W: [K, CO] row-major) for K < CO (few input channels). The GEMM of
 * ./gemm.ts takes N = K here in panels of 4 columns (K = 9: 12, a quarter wasted) and packs all of
 * dy into float64 first; this reads dy in place and holds 4 rows × 3 columns of dcols in locals
 * (7 loads per 12 multiply-adds over co), Wᵀ packed once as float64 panels of 3 columns, k-major.
 * Float64 accumulation, rounded once.
 */
export function dyTimesWt(dy: Float32Array, w: Float32Array, M: number, K: number, CO: number, dcols: Float32Array): void {
  const nP = Math.ceil(K / 3);
  if (wPanels.length < nP * 3 * CO) wPanels = new Float64Array(nP * 3 * CO);
  const wp = wPanels;
  for (let p = 0; p < nP; p++) {
    for (let co = 0; co < CO; co++) {
      for (let jj = 0; jj < 3; jj++) {
        const k = p * 3 + jj;
        wp[(p * CO + co) * 3 + jj] = k < K ? w[k * CO + co]! : 0;
      }
    }
  }
  const tail = K - (nP - 1) * 3; // columns of the last panel
  let i0 = 0;
  for (; i0 + 4 <= M; i0 += 4) {
    const r0 = i0 * CO;
    const r1 = r0 + CO;
    const r2 = r1 + CO;
    const r3 = r2 + CO;
    for (let p = 0; p < nP; p++) {
      let c00 = 0, c01 = 0, c02 = 0, c10 = 0, c11 = 0, c12 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c30 = 0, c31 = 0, c32 = 0;
      let q = p * CO * 3;
      for (let k = 0; k < CO; k++, q += 3) {
        const b0 = wp[q]!, b1 = wp[q + 1]!, b2 = wp[q + 2]!;
        const a0 = dy[r0 + k]!, a1 = dy[r1 + k]!, a2 = dy[r2 + k]!, a3 = dy[r3 + k]!;
        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2;
        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2;
        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2;
        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2;
      }
      const o = i0 * K + p * 3;
      if (p < nP - 1 || tail === 3) {
        dcols[o] = c00; dcols[o + 1] = c01; dcols[o + 2] = c02;
        dcols[o + K] = c10; dcols[o + K + 1] = c11; dcols[o + K + 2] = c12;
        dcols[o + 2 * K] = c20; dcols[o + 2 * K + 1] = c21; dcols[o + 2 * K + 2] = c22;
        dcols[o + 3 * K] = c30; dcols[o + 3 * K + 1] = c31; dcols[o + 3 * K + 2] = c32;
      } else {
        // The last panel, 1 or 2 columns wide.
        dcols[o] = c00; dcols[o + K] = c10; dcols[o + 2 * K] = c20; dcols[o + 3 * K] = c30;
        if (tail === 2) {
          dcols[o + 1] = c01; dcols[o + K + 1] = c11; dcols[o + 2 * K + 1] = c21; dcols[o + 3 * K + 1] = c31;
        }
      }
    }
  }
  // The last M mod 4 rows, one at a time.
  for (; i0 < M; i0++) {
    const r = i0 * CO;
    for (let k = 0; k < K; k++) {
      const p = (k / 3) | 0;
      const jj = k - p * 3;
      let acc = 0;
      for (let co = 0; co < CO; co++) acc += dy[r + co]! * wp[(p * CO + co) * 3 + jj]!;
      dcols[i0 * K + k] = acc;
    }
  }
}

/** W[kh, kw, ci, co] → W'[fH−1−kh, fW−1−kw, co, ci] (a new tensor). */
function flipFilter(io: KernelIo, filter: TensorInfo, c: ConvInfo): TensorInfo {
  const { filterHeight: FH, filterWidth: FW, inChannels: CI, outChannels: CO } = c;
  const out = io.alloc([FH, FW, CO, CI]);
  const w = io.view(filter);
  const f = io.view(out);
  for (let kh = 0; kh < FH; kh++) {
    for (let kw = 0; kw < FW; kw++) {
      const src = (kh * FW + kw) * CI * CO;
      const dst = ((FH - 1 - kh) * FW + (FW - 1 - kw)) * CO * CI;
      for (let ci = 0; ci < CI; ci++) {
        for (let co = 0; co < CO; co++) f[dst + co * CI + ci] = w[src + ci * CO + co]!;
      }
    }
  }
  return out;
}

/** W as [K, CO] → Wᵀ [1, CO, K] (a new tensor). */
function transposeFilter(io: KernelIo, filter: TensorInfo, K: number, CO: number): TensorInfo {
  const out = io.alloc([1, CO, K]);
  const w = io.view(filter);
  const t = io.view(out);
  for (let k = 0; k < K; k++) for (let co = 0; co < CO; co++) t[co * K + k] = w[k * CO + co]!;
  return out;
}

/** One phase of a strided Conv2DBackpropInput along one axis. */
interface Phase {
  /** First dx row of the phase and the number of its rows (every s-th). */
  readonly first: number;
  readonly count: number;
  /** Filter taps of the phase: k = p + s·t for t < taps. */
  readonly p: number;
  readonly taps: number;
  /** dy rows read before row 0 (as zero padding; negative: rows cropped from the top). */
  readonly before: number;
  /** dy rows read after the last one (negative: cropped from the bottom). */
  readonly after: number;
}

function phasesOf(size: number, outSize: number, filter: number, stride: number, pad: number): Phase[] {
  const phases: Phase[] = [];
  for (let p = 0; p < stride; p++) {
    const first = (((p - pad) % stride) + stride) % stride;
    const count = first < size ? Math.ceil((size - first) / stride) : 0;
    const taps = p < filter ? Math.ceil((filter - p) / stride) : 0;
    const q = (first + pad - p) / stride;
    const before = taps - 1 - q;
    phases.push({ first, count, p, taps, before, after: count - outSize + taps - 1 - before });
  }
  return phases;
}

/** Strided Conv2DBackpropInput as s² stride-1 XNNPACK convolutions of dy with sub-filters. */
function backpropInputByPhases(io: KernelIo, dy: TensorInfo, filter: TensorInfo, c: ConvInfo): TensorInfo {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outChannels: CO, outHeight: OH, outWidth: OW } = c;
  const FW = c.filterWidth;
  const rows = phasesOf(H, OH, c.filterHeight, c.strideHeight, c.padInfo.top);
  const cols = phasesOf(W, OW, FW, c.strideWidth, c.padInfo.left);
  const out = io.alloc(c.inShape);
  io.view(out).fill(0);
  for (const r of rows) {
    for (const q of cols) {
      if (r.count === 0 || q.count === 0 || r.taps === 0 || q.taps === 0) continue;
      const temps: TensorInfo[] = [];
      try {
        // Sub-filter, flipped, channels swapped: f[t', u', co, ci] = W[r.p + s(r.taps−1−t'), q.p + s(q.taps−1−u'), ci, co].
        const sub = io.alloc([r.taps, q.taps, CO, CI]);
        temps.push(sub);
        const w = io.view(filter);
        const f = io.view(sub);
        for (let t = 0; t < r.taps; t++) {
          for (let u = 0; u < q.taps; u++) {
            const kh = r.p + c.strideHeight * (r.taps - 1 - t);
            const kw = q.p + c.strideWidth * (q.taps - 1 - u);
            const src = (kh * FW + kw) * CI * CO;
            const dst = (t * q.taps + u) * CO * CI;
            for (let ci = 0; ci < CI; ci++) for (let co = 0; co < CO; co++) f[dst + co * CI + ci] = w[src + ci * CO + co]!;
          }
        }
        // Crop dy where a phase reads fewer rows than it has, pad (in the conv) where it reads more.
        let src = dy;
        const cropTop = Math.max(0, -r.before);
        const cropLeft = Math.max(0, -q.before);
        const keepH = OH - cropTop - Math.max(0, -r.after);
        const keepW = OW - cropLeft - Math.max(0, -q.after);
        if (keepH <= 0 || keepW <= 0) continue;
        if (keepH !== OH || keepW !== OW) {
          src = io.run('Slice', { x: dy }, { begin: [0, cropTop, cropLeft, 0], size: [N, keepH, keepW, CO] });
          temps.push(src);
        }
        const pad = [[0, 0], [Math.max(0, r.before), Math.max(0, r.after)], [Math.max(0, q.before), Math.max(0, q.after)], [0, 0]];
        const part = io.run('Conv2D', { x: src, filter: sub }, { strides: [1, 1], pad, dilations: [1, 1], dataFormat: 'NHWC' });
        temps.push(part);
        // Scatter the phase into dx rows first + s·i, columns first + s·j.
        const v = io.view(part);
        const dx = io.view(out);
        for (let n = 0, o = 0; n < N; n++) {
          for (let i = 0; i < r.count; i++) {
            for (let j = 0; j < q.count; j++, o += CI) {
              const d = ((n * H + r.first + c.strideHeight * i) * W + q.first + c.strideWidth * j) * CI;
              for (let ch = 0; ch < CI; ch++) dx[d + ch] = v[o + ch]!;
            }
          }
        }
      } finally {
        for (const t of temps) io.dispose(t);
      }
    }
  }
  return out;
}

export function conv2dBackpropInputWasm(args: Args): TensorInfo {
  const io = ioFor('wasm', args.backend);
  const { dy, filter, c } = geometry(args);
  const { M, K } = colsShape(c);
  const CO = c.outChannels;
  const temps: TensorInfo[] = [];
  try {
    const pt = c.filterHeight - 1 - c.padInfo.top;
    const pl = c.filterWidth - 1 - c.padInfo.left;
    const pb = c.inHeight - c.outHeight + c.filterHeight - 1 - pt;
    const pr = c.inWidth - c.outWidth + c.filterWidth - 1 - pl;
    // Few input channels (K = kh·kw·ci < co: a first layer): the flipped-filter convolution has ci
    // output channels, which XNNPACK's conv runs far below its GEMM rate (Conv4 block 1: 3.8× the
    // forward conv); dy · Wᵀ on the GEMM plus a col2im pass is ~4× faster there.
    const fewInputs = K < CO;
    if (!fewInputs && c.strideHeight === 1 && c.strideWidth === 1 && c.dilationHeight === 1 && c.dilationWidth === 1 && Math.min(pt, pl, pb, pr) >= 0) {
      const flipped = flipFilter(io, filter, c);
      temps.push(flipped);
      const pad = [[0, 0], [pt, pb], [pl, pr], [0, 0]];
      return io.run('Conv2D', { x: dy, filter: flipped }, { strides: [1, 1], pad, dilations: [1, 1], dataFormat: 'NHWC' });
    }
    if (!fewInputs && c.dilationHeight === 1 && c.dilationWidth === 1) return backpropInputByPhases(io, dy, filter, c);
    const wT = transposeFilter(io, filter, K, CO);
    temps.push(wT);
    const dcols = io.run('BatchMatMul', { a: { ...dy, shape: [1, M, CO] }, b: wT }, { transposeA: false, transposeB: false });
    temps.push(dcols);
    const out = io.alloc(c.inShape);
    col2im(io.view(dcols), c, io.view(out));
    return out;
  } finally {
    for (const t of temps) io.dispose(t);
  }
}

export const conv2dBackpropInputCpuConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'cpu',
  kernelFunc: conv2dBackpropInputCpu,
};

export const conv2dBackpropInputWasmConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInputWasm,
};
