/**
 * Conv2DBackpropFilter: dW[kh, kw, ci, co] = Σ_{n,i,j} x[n, i·s + kh − top, j·s + kw − left, ci] · dy[n, i, j, co].
 *
 * cpu: 3×3 stride 1 with ≥ 2 input channels (as the forward conv, ./conv2d.ts): Winograd F(3×3, 2×2),
 *   the transpose of the forward's F(2×2, 3×3) (./winograd-filter.ts); otherwise im2col(x)ᵀ · dy with the
 *   GEMM of ./gemm.ts (tfjs-backend-cpu's own is a 7-deep loop calling TensorBuffer.get per multiply-add,
 *   ~55× slower than its forward conv of the same FLOPs).
 * wasm (which has no such kernel, tfjs issue #8474): im2colᵀ built in JS on the wasm heap, products on
 *   the backend's BatchMatMul (XNNPACK's fully-connected GEMM, plain [1, r, k]·[1, k, c]):
 *   - x is split into its stride phases on the output grid, xp[ph, pw, ci, n, a, b] =
 *     x[n, a·SH + ph, b·SW + pw, ci] (one backend Transpose), so each row of im2colᵀ (one tap, one
 *     channel) is a phase plane shifted by a constant: one typed-array copy, then |qh| rows and |qw|
 *     columns per image rewritten at the edges (fillTap);
 *   - K = FH·FW·C ≥ F (every layer but the first): dW[K, F] = Σ colsT[K, chunk] · dy[chunk, F] over
 *     chunks of whole images of ~CHUNK_PIXELS output pixels. The GEMM packs its second operand (a dy
 *     chunk: stays in L2) and caches the packed copy by tensor id, so the chunks are copies: packed on
 *     each call and released with it, as in training, where each dy is new;
 *   - K < F (one input channel: the first layer): SIMD wasm straight from x and dy on the heap
 *     (./conv-filter-grad-simd.ts) when F % 4 == 0; otherwise dWᵀ[F, K] = dyᵀ · cols (dy and colsT
 *     transposed by the backend), packing cols (M·K values) instead of dy (M·F). Timed without
 *     readback on x [80, 28, 28, 1], 64 filters: the forward ~5 ms, dyᵀ·cols ~11.5 ms (~4.4 ms of it
 *     transposing dy), the SIMD kernel ~3 ms.
 *   This replaced an XNNPACK Conv2D over transposed x and dy with dilation = stride (batch ← ci,
 *   channels ← n, filter ← dy), which packed all of dy as a filter and transposed x, dy and the result.
 *   On the Conv4 shapes of bench/suites/compute.mjs (x [80, 28, 28, 1] and [80, 14, 14, 64], 64
 *   filters 3×3 'same', stride 1; the latter also with stride 2), time over the forward conv2d of the
 *   same FLOPs, both with the readback of their result as the bench times them, interleaved in one
 *   process on one core: ~2.0×, 1.45×, 1.5× before; ~0.85×, ~1.2×, ~1.35× now. (The first forward's
 *   readback is 4M values: without it that forward takes ~5 ms and this kernel ~2.2× as long, most of
 *   it transposing dy and the GEMM.) One path for every shape: the old one was nowhere faster (a tie
 *   on 'valid' padding, where x's pixels beyond the planes are read from x transposed to [C, N, H, W]).
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';
import { firstLayerFilterGrad, fitsFirstLayerFilterGrad } from './conv-filter-grad-1ch.js';
import { conv2dBackpropFilterSimd } from './conv-filter-grad-simd.js';
import { colsShape, convInfo, im2col, scratchBuffer, type ConvAttrs, type ConvInfo } from './conv-util.js';
import { usesWinograd } from './conv2d.js';
import { gemm, rowMajor } from './gemm.js';
import { ioFor, type KernelIo, type TensorInfo } from './io.js';
import { winogradFilterGrad } from './winograd-filter.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function geometry(args: Args): { x: TensorInfo; dy: TensorInfo; c: ConvInfo } {
  const x = args.inputs.x!;
  const dy = args.inputs.dy!;
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  const c = convInfo(tf.Conv2DBackpropFilter, x.shape, attrs.filterShape, attrs);
  if (dy.shape.join() !== c.outShape.join()) {
    throw new KernelSetupError(`Conv2DBackpropFilter: dy has shape [${String(dy.shape)}], the convolution's output is [${String(c.outShape)}]`);
  }
  return { x, dy, c };
}

export function conv2dBackpropFilterCpu(args: Args): TensorInfo {
  const io = ioFor('cpu', args.backend);
  const { x, dy, c } = geometry(args);
  const { M, K } = colsShape(c);
  const CO = c.outChannels;
  const out = io.alloc([c.filterHeight, c.filterWidth, c.inChannels, CO]);
  if (usesWinograd(c)) {
    const geo = {
      batch: c.batchSize, inHeight: c.inHeight, inWidth: c.inWidth, inChannels: c.inChannels, outChannels: CO,
      outHeight: c.outHeight, outWidth: c.outWidth, top: c.padInfo.top, left: c.padInfo.left,
    };
    winogradFilterGrad(io.view(x), io.view(dy), geo, io.view(out));
    return out;
  }
  if (fitsFirstLayerFilterGrad(c)) {
    firstLayerFilterGrad(io.view(x), io.view(dy), c, io.view(out));
    return out;
  }
  const cols = scratchBuffer(M * K);
  im2col(io.view(x), c, cols);
  // dW[K, CO] = colsᵀ[K, M] · dy[M, CO]
  gemm(K, CO, M, rowMajor(cols, M, K, true), rowMajor(io.view(dy), M, CO), io.view(out));
  return out;
}

/** x and its phase planes, as fillTap reads them. */
interface Planes {
  /** xp[ph, pw, ci, n, a, b] = x[n, a·SH + ph, b·SW + pw, ci] (0 below or right of x), a < OH, b < OW. */
  readonly xp: TensorInfo;
  /** x as [C, N, H, W], where x has pixels outside the planes (more than OH·SH rows or OW·SW columns). */
  readonly xT: TensorInfo | undefined;
}

/**
 * The planes are one backend Transpose of x viewed as [N·OH, SH, OW, SW·C] (none for stride 1 and one
 * channel), x first cropped or zero-padded to OH·SH × OW·SW rows and columns where it is not that size.
 * Where it is larger ('valid' padding), the pixels beyond are read from x transposed to [C, N, H, W].
 */
function phasePlanes(io: KernelIo, x: TensorInfo, c: ConvInfo, temps: TensorInfo[]): Planes {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, strideHeight: SH, strideWidth: SW } = c;
  const HE = OH * SH;
  const WE = OW * SW;
  let xT: TensorInfo | undefined;
  if (H > HE || W > WE) {
    xT = C === 1 ? x : io.run('Transpose', { x }, { perm: [3, 0, 1, 2] });
    if (xT !== x) temps.push(xT);
  }
  let xe = x;
  if (H !== HE || W !== WE) {
    xe = io.alloc([N, HE, WE, C]);
    temps.push(xe);
    const src = io.view(x);
    const dst = io.view(xe);
    const run = Math.min(W, WE) * C;
    for (let n = 0; n < N; n++) {
      for (let h = 0; h < HE; h++) {
        const d = (n * HE + h) * WE * C;
        if (h < H) {
          const s = (n * H + h) * W * C;
          dst.set(src.subarray(s, s + run), d);
          dst.fill(0, d + run, d + WE * C);
        } else {
          dst.fill(0, d, d + WE * C);
        }
      }
    }
  }
  if (SH === 1 && SW === 1 && C === 1) return { xp: xe, xT };
  const xp = io.run('Transpose', { x: { ...xe, shape: [N * OH, SH, OW, SW * C] } }, { perm: [1, 3, 0, 2] });
  temps.push(xp);
  return { xp, xT };
}

/**
 * Rows (kh, kw, ·) of colsT for images [n0, n1): tap[ci, m] = x[n, i·SH + kh·DH − top,
 * j·SW + kw·DW − left, ci] (0 outside x), m = (n − n0)·OH·OW + i·OW + j, written to out[dst + ci·L + m]
 * (L = (n1 − n0)·OH·OW). With kh·DH − top = qh·SH + ph (0 ≤ ph < SH), and likewise for w, that is
 * xp[ph, pw, ci, n, i + qh, j + qw]: each row is one phase plane shifted by qh·OW + qw, copied in one
 * piece; only where i + qh or j + qw leaves the plane (|qh| rows and |qw| columns per image) is it
 * rewritten: 0 in the padding, the pixel of x where x extends past OH·SH rows or OW·SW columns (row
 * a = i + qh ≥ OH starts at pixel row a·SH + ph ≥ OH·SH; a < 0 is above row 0; likewise for columns).
 */
function fillTap(xT: Float32Array | undefined, xp: Float32Array, c: ConvInfo, kh: number, kw: number, n0: number, n1: number, out: Float32Array, dst: number): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, strideHeight: SH, strideWidth: SW } = c;
  const S = OH * OW;
  const M = N * S;
  const L = (n1 - n0) * S;
  const dh = kh * c.dilationHeight - c.padInfo.top;
  const dw = kw * c.dilationWidth - c.padInfo.left;
  const qh = Math.floor(dh / SH);
  const ph = dh - qh * SH;
  const qw = Math.floor(dw / SW);
  const pw = dw - qw * SW;
  const off = qh * OW + qw;
  // Source range of the one copy (global m), kept inside the plane.
  const m0 = Math.max(n0 * S, -off);
  const m1 = Math.min(n1 * S, M - off);
  // Rows [va, vb) and columns [ja, jb) of an image stay inside the plane.
  const va = Math.min(OH, Math.max(0, -qh));
  const vb = Math.max(va, Math.min(OH, OH - qh));
  const ja = Math.min(OW, Math.max(0, -qw));
  const jb = Math.max(ja, Math.min(OW, OW - qw));
  // Pixel of x at row ih of image n (channel ch), columns j·SW + dw, into out[r + j] for j in [j0, j1).
  const edge = (n: number, ch: number, ih: number, r: number, j0: number, j1: number) => {
    if (xT === undefined || ih < 0 || ih >= H) {
      for (let j = j0; j < j1; j++) out[r + j] = 0; // (fill() costs more on these short runs)
      return;
    }
    const base = ((ch * N + n) * H + ih) * W;
    for (let j = j0; j < j1; j++) {
      const iw = j * SW + dw;
      out[r + j] = iw >= 0 && iw < W ? xT[base + iw]! : 0;
    }
  };
  for (let ch = 0; ch < C; ch++) {
    const row = dst + ch * L - n0 * S;
    const plane = ((ph * SW + pw) * C + ch) * M;
    if (m1 > m0) out.set(xp.subarray(plane + m0 + off, plane + m1 + off), row + m0);
    if (qh === 0 && qw === 0) continue;
    for (let n = n0; n < n1; n++) {
      const img = row + n * S;
      for (let i = 0; i < va; i++) edge(n, ch, i * SH + dh, img + i * OW, 0, OW);
      for (let i = vb; i < OH; i++) edge(n, ch, i * SH + dh, img + i * OW, 0, OW);
      if (qw === 0) continue;
      for (let i = va; i < vb; i++) {
        edge(n, ch, i * SH + dh, img + i * OW, 0, ja);
        edge(n, ch, i * SH + dh, img + i * OW, jb, OW);
      }
    }
  }
}

/** Output pixels per product of the 'colsT·dy' path: dy's packed chunk (× F floats) stays in L2. */
const CHUNK_PIXELS = 2048;

export type GemmOrientation = 'colsT·dy' | 'dyT·cols';

/**
 * The wasm path: im2colᵀ built in JS on the heap, then products on the backend's BatchMatMul (XNNPACK's
 * fully-connected GEMM: plain [1, r, M]·[1, M, c], no transposes). That GEMM packs its second operand,
 * caching the packed copy by tensor id, so dy is copied first: a fresh operand, packed on each call and
 * released with it, as in training, where each dy is new. `orientation`:
 * - 'colsT·dy': dW[K, F] = Σ over chunks of images colsT[K, chunk] · dy[chunk, F] (K = FH·FW·C),
 *   packing dy (M·F values in all); `chunk` images of OH·OW pixels per product (all when ≥ N);
 * - 'dyT·cols': dWᵀ[F, K] = dyᵀ · cols (dy and colsT transposed by the backend), packing cols
 *   (M·K values) — cheaper when K < F (one input channel: the first layer).
 */
export function conv2dBackpropFilterViaGemm(io: KernelIo, x: TensorInfo, dy: TensorInfo, c: ConvInfo, orientation: GemmOrientation, chunk = Infinity): TensorInfo {
  const { M, K } = colsShape(c);
  const { batchSize: N, filterHeight: FH, filterWidth: FW, inChannels: C, outChannels: F } = c;
  const S = c.outHeight * c.outWidth;
  const temps: TensorInfo[] = [];
  const fill = (colsT: TensorInfo, xT: TensorInfo | undefined, xp: TensorInfo, n0: number, n1: number) => {
    const xv = xT === undefined ? undefined : io.view(xT);
    const xpv = io.view(xp);
    const cv = io.view(colsT);
    const L = (n1 - n0) * S;
    for (let kh = 0; kh < FH; kh++) for (let kw = 0; kw < FW; kw++) fillTap(xv, xpv, c, kh, kw, n0, n1, cv, (kh * FW + kw) * C * L);
  };
  try {
    const { xp, xT } = phasePlanes(io, x, c, temps);
    if (orientation === 'colsT·dy') {
      const out = io.alloc([FH, FW, C, F]);
      const per = Math.max(1, Math.min(N, chunk));
      for (let n0 = 0; n0 < N; n0 += per) {
        const n1 = Math.min(N, n0 + per);
        const L = (n1 - n0) * S;
        const part: TensorInfo[] = [];
        try {
          const colsT = io.alloc([1, K, L]);
          part.push(colsT);
          const b = io.alloc([1, L, F]);
          part.push(b);
          fill(colsT, xT, xp, n0, n1);
          io.view(b).set(io.view(dy).subarray(n0 * S * F, n1 * S * F));
          const prod = io.run('BatchMatMul', { a: colsT, b }, { transposeA: false, transposeB: false });
          part.push(prod);
          const p = io.view(prod);
          const o = io.view(out);
          if (n0 === 0) o.set(p.subarray(0, K * F));
          else for (let k = 0; k < K * F; k++) o[k] = o[k]! + p[k]!;
        } finally {
          for (const t of part) io.dispose(t);
        }
      }
      return out;
    }
    const colsT = io.alloc([1, K, M]);
    temps.push(colsT);
    fill(colsT, xT, xp, 0, N);
    const a = io.run('Transpose', { x: { ...dy, shape: [M, F] } }, { perm: [1, 0] });
    temps.push(a);
    const b = io.run('Transpose', { x: { ...colsT, shape: [K, M] } }, { perm: [1, 0] });
    temps.push(b);
    const prod = io.run('BatchMatMul', { a: { ...a, shape: [1, F, M] }, b: { ...b, shape: [1, M, K] } }, { transposeA: false, transposeB: false });
    temps.push(prod);
    const out = io.alloc([FH, FW, C, F]);
    const p = io.view(prod);
    const o = io.view(out);
    for (let k = 0; k < K; k++) for (let f = 0; f < F; f++) o[k * F + f] = p[f * K + k]!;
    return out;
  } finally {
    for (const t of temps) io.dispose(t);
  }
}

export function conv2dBackpropFilterWasm(args: Args): TensorInfo {
  const io = ioFor('wasm', args.backend);
  const { x, dy, c } = geometry(args);
  const simd = conv2dBackpropFilterSimd(io, args.backend, x, dy, c);
  if (simd !== undefined) return simd;
  const { K } = colsShape(c);
  if (K < c.outChannels) return conv2dBackpropFilterViaGemm(io, x, dy, c, 'dyT·cols');
  return conv2dBackpropFilterViaGemm(io, x, dy, c, 'colsT·dy', Math.max(1, Math.floor(CHUNK_PIXELS / (c.outHeight * c.outWidth))));
}

export const conv2dBackpropFilterCpuConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'cpu',
  kernelFunc: conv2dBackpropFilterCpu,
};

export const conv2dBackpropFilterWasmConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilterWasm,
};
