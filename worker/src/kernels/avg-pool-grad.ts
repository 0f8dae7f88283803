/**
 * AvgPoolGrad: dx = dy spread over each window's in-bounds pixels, each share divided by the full
 * window size fH·fW (exactly what the tfjs cpu and wasm kernels compute, also with 'same' padding;
 * ../gradients/avg-pool.ts rescales dy for that). Flat Float32Array loops, channel axis innermost;
 * on wasm with channels a multiple of 4, SIMD wasm on the backend's heap (pool-grad-simd.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ioFor, type TensorInfo, type TrainingBackend } from './io.js';
import { simdPoolShape, wasmPoolGrad } from './pool-grad-simd.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function avgPoolGrad(backendName: TrainingBackend, args: Args): TensorInfo {
  const io = ioFor(backendName, args.backend);
  const dyInfo = args.inputs.dy!;
  const xInfo = args.inputs.input!;
  const { filterSize, strides, pad } = args.attrs as unknown as tf.AvgPoolGradAttrs;
  const p = tf.backend_util.computePool2DInfo(xInfo.shape as [number, number, number, number], filterSize, strides, 1, pad);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = p;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = p;
  const top = p.padInfo.top;
  const left = p.padInfo.left;
  const scale = 1 / (FH * FW);
  const out = io.alloc(xInfo.shape);
  const simd = backendName === 'wasm' && simdPoolShape(p) ? wasmPoolGrad(args.backend) : undefined;
  if (simd && dyInfo.dtype === 'float32') {
    simd.avgPoolGrad(dyInfo, out, io.view(out), p);
    return out;
  }
  const dy = io.view(dyInfo);
  const dx = io.view(out);
  dx.fill(0);
  let o = 0;
  for (let n = 0; n < N; n++) {
    const xN = n * H * W * C;
    for (let i = 0; i < OH; i++) {
      const h0 = i * SH - top;
      for (let j = 0; j < OW; j++, o += C) {
        const w0 = j * SW - left;
        for (let kh = 0; kh < FH; kh++) {
          const h = h0 + kh;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < FW; kw++) {
            const w = w0 + kw;
            if (w < 0 || w >= W) continue;
            const base = xN + (h * W + w) * C;
            for (let c = 0; c < C; c++) dx[base + c] = dx[base + c]! + dy[o + c]! * scale;
          }
        }
      }
    }
  }
  return out;
}

export const avgPoolGradCpuConfig: tf.KernelConfig = {
  kernelName: tf.AvgPoolGrad,
  backendName: 'cpu',
  kernelFunc: (args: Args) => avgPoolGrad('cpu', args),
};

export const avgPoolGradWasmConfig: tf.KernelConfig = {
  kernelName: tf.AvgPoolGrad,
  backendName: 'wasm',
  kernelFunc: (args: Args) => avgPoolGrad('wasm', args),
};
