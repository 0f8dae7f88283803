/**
 * Conv2DBackpropInput: dx[n, h, w, ci] = Σ dy[n, i, j, co] · W[kh, kw, ci, co] over h = i·s + kh − top,
 * w = j·s + kw − left.
 *
 * cpu: 3×3 stride 1 with ≥ 2 output channels: Winograd F(2×2, 3×3) on dy with the flipped filter
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
    throw new Error(`Conv2DBackpropInput: dy has shape [${dy.shape}], the convolution's output is [${c.outShape}]`);
  }
  return { dy, filter, c };
}

export function conv2dBackpropInputCpu(args: Args): TensorInfo {
  const io = ioFor('cpu', args.backend);
  const { dy, filter, c } = geometry(args);
  const { M, K } = colsShape(c);
  const CO = c.outChannels;
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
  kernelFunc: conv2dBackpropInputCpu as unknown as tf.KernelFunc,
};

export const conv2dBackpropInputWasmConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInputWasm as unknown as tf.KernelFunc,
};
