/**
 * MaxPoolGrad: dx = dy scattered to each window's first maximum of x (row-major over the window,
 * padding never wins), the tap tfjs-backend-cpu picks. One pass over the windows with flat
 * Float32Array indexing and the channel axis innermost (contiguous): memory-bound, for cpu
 * (whose own kernel goes through TensorBuffer.get) and wasm (whose own C++ kernel was measured
 * ~25× slower than its forward MaxPool). On wasm with channels a multiple of 4 the same pass runs
 * as SIMD wasm on the backend's heap instead (pool-grad-simd.ts, pool-grad.wat).
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
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = p;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = p;
  const top = p.padInfo.top;
  const left = p.padInfo.left;
  const out = io.alloc(xInfo.shape);
  const simd = backendName === 'wasm' && simdPoolShape(p) ? wasmPoolGrad(args.backend) : undefined;
  if (simd && xInfo.dtype === 'float32' && dyInfo.dtype === 'float32') {
    simd.maxPoolGrad(xInfo, dyInfo, out, io.view(out), p);
    return out;
  }
  const x = io.view(xInfo);
  const dy = io.view(dyInfo);
  const dx = io.view(out);
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
  return out;
}

export const maxPoolGradCpuConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'cpu',
  kernelFunc: ((args: Args) => maxPoolGrad('cpu', args)) as unknown as tf.KernelFunc,
};

export const maxPoolGradWasmConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: ((args: Args) => maxPoolGrad('wasm', args)) as unknown as tf.KernelFunc,
};
