/**
 * The wasm backend's Conv2DBackpropFilter for few input channels (a conv net's first layer) as SIMD
 * wasm on the backend's heap (conv-filter-grad.wat, bound through ./wasm-heap.ts):
 * dW[kh, kw, c, f] = Σ_{n,i,j} x[n, i·SH + kh·DH − top, j·SW + kw·DW − left, c] · dy[n, i, j, f]
 * straight from x (copied once into a zero-padded buffer unless no padding is needed: a small copy
 * when C is small) and dy (read row by row, contiguous over f), f32x4 accumulators over 3 taps × 8
 * filters per pass: no im2col, no transposes; any stride, dilation and padding. The GEMM path of
 * ./conv2d-backprop-filter.ts, for x [80, 28, 28, 1] and 64 filters, spent ~40% of its time
 * transposing dy to [F, M]; kernel alone (no readback), interleaved in one process: that path
 * ~2.3× the forward conv2d, this one ~0.6× (x [80, 28, 28, 3]: ~2.8× → ~1×).
 *
 * Taken when F % 4 == 0 and FH·FW·C < F (where the GEMM path would run dyᵀ·cols); the GEMM path
 * stays for every other shape and for a backend whose memory cannot be reached.
 */
import type { ConvInfo } from './conv-util.js';
import type { KernelIo, TensorInfo } from './io.js';
import { heapKernels } from './wasm-heap.js';

interface Exports {
  pad_copy(x: number, xp: number, N: number, H: number, W: number, C: number, Hp: number, Wp: number, top: number, left: number): void;
  conv_filter_grad(xp: number, dy: number, dw: number, scratch: number, ...dims: number[]): void;
}

const kernels = heapKernels<Exports>('conv-filter-grad.wasm');

/** dy bytes per band of output rows: a band stays in L2 while every tap triple and filter block reads it. */
const BAND_BYTES = 256 * 1024;

/** Does this convolution's filter gradient take the SIMD path (on a backend where it loads)? */
export function simdFilterGradShape(c: ConvInfo): boolean {
  const K = c.filterHeight * c.filterWidth * c.inChannels;
  return c.outChannels % 4 === 0 && K < c.outChannels && c.batchSize * c.outHeight * c.outWidth > 0;
}

/** 'simd' when the SIMD kernel runs on this backend, else why the GEMM path does. */
export function wasmFilterGradStatus(backend: unknown): string {
  return kernels.status(backend);
}

/**
 * dW = Conv2DBackpropFilter(x, dy) by the SIMD kernel, or undefined when it cannot run here (shape
 * or backend: the caller takes its other path). x and dy float32 on `backend`'s heap.
 */
export function conv2dBackpropFilterSimd(io: KernelIo, backend: unknown, x: TensorInfo, dy: TensorInfo, c: ConvInfo): TensorInfo | undefined {
  if (!simdFilterGradShape(c) || x.dtype !== 'float32' || dy.dtype !== 'float32') return undefined;
  const m = kernels.get(backend);
  if (m === undefined) return undefined;
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: F } = c;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  // Every tap in bounds: the padded input reaches the last tap of the last output pixel.
  const Hp = Math.max(top + H, (OH - 1) * SH + (FH - 1) * DH + 1);
  const Wp = Math.max(left + W, (OW - 1) * SW + (FW - 1) * DW + 1);
  const temps: TensorInfo[] = [];
  try {
    const out = io.alloc([FH, FW, C, F]);
    let xp = x;
    if (Hp !== H || Wp !== W) {
      xp = io.alloc([N, Hp, Wp, C]);
      temps.push(xp);
      m.exports.pad_copy(m.at(x), m.at(xp), N, H, W, C, Hp, Wp, top, left);
    }
    let scratch = 0;
    if ((FW * C) % 3 !== 0) {
      const s = io.alloc([16]);
      temps.push(s);
      scratch = m.at(s);
    }
    const band = Math.max(1, Math.floor(BAND_BYTES / (OW * F * 4)));
    m.exports.conv_filter_grad(m.at(xp), m.at(dy), m.at(out), scratch, N, OH, OW, F, C, FH, FW, SH, SW, DH, DW, Hp, Wp, band);
    return out;
  } finally {
    for (const t of temps) io.dispose(t);
  }
}
