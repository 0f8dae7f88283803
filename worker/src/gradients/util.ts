/**
 * Helpers shared by the second-order gradient configs in this folder. Everything here is built from
 * ops that every backend (cpu, wasm, tensorflow) implements.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';

/** The single upstream gradient of a one-output kernel. */
export function single(dy: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (Array.isArray(dy)) {
    const first = dy[0];
    if (first === undefined || dy.length !== 1) throw new KernelSetupError(`expected one upstream gradient, got ${dy.length}`);
    return first;
  }
  return dy;
}

/** saved[i], or a clear error when the engine did not save it (a registration-order bug). */
export function savedAt(saved: tf.Tensor[], i: number, kernel: string): tf.Tensor {
  const t = saved[i];
  if (t === undefined) throw new KernelSetupError(`${kernel} gradient: saved tensor ${i} missing (was the gradient registered before the forward pass ran?)`);
  return t;
}

/** Run a kernel through the engine so that it is recorded on the active tape. */
export function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): tf.Tensor {
  return tf.engine().runKernel<tf.Tensor>(name, inputs, attrs);
}

export type PoolPad = tf.MaxPoolGradAttrs['pad'];

/** Geometry of a 2-D pool over an NHWC input, as the tfjs kernels compute it. */
export function poolGeometry(
  xShape: readonly number[],
  filterSize: [number, number] | number,
  strides: [number, number] | number,
  pad: PoolPad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
) {
  if (xShape.length !== 4) throw new KernelSetupError(`pool gradient: expected a 4-D NHWC input, got shape [${xShape.join(', ')}]`);
  const info = tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  return {
    batch: info.batchSize,
    channels: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    fH: info.filterHeight,
    fW: info.filterWidth,
    sH: info.strideHeight,
    sW: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
    bottom: info.padInfo.bottom,
    right: info.padInfo.right,
  };
}
export type PoolGeometry = ReturnType<typeof poolGeometry>;

/**
 * Pad an NHWC tensor with the pool's padding (extended if needed so every window fits), filled with
 * `value`.
 */
export function padForPool(x: tf.Tensor, g: PoolGeometry, value: number): tf.Tensor4D {
  const [, h, w] = x.shape as [number, number, number, number];
  const needH = (g.outH - 1) * g.sH + g.fH;
  const needW = (g.outW - 1) * g.sW + g.fW;
  const bottom = Math.max(0, needH - h - g.top);
  const right = Math.max(0, needW - w - g.left);
  if (g.top === 0 && g.left === 0 && bottom === 0 && right === 0) return x as tf.Tensor4D;
  return tf.pad(x as tf.Tensor4D, [[0, 0], [g.top, bottom], [g.left, right], [0, 0]], value);
}

/** The strided view x[:, kh + i*sH, kw + j*sW, :] for i < outH, j < outW of a padded input. */
export function windowTap(xPadded: tf.Tensor4D, g: PoolGeometry, kh: number, kw: number): tf.Tensor4D {
  return tf.stridedSlice(
    xPadded,
    [0, kh, kw, 0],
    [g.batch, kh + (g.outH - 1) * g.sH + 1, kw + (g.outW - 1) * g.sW + 1, g.channels],
    [1, g.sH, g.sW, 1],
  ) as tf.Tensor4D;
}

const avgPoolGradStyle = new Map<string, 'full-window' | 'in-bounds'>();

/**
 * What the active backend's AvgPoolGrad kernel divides by at a padded border: the full window
 * (tfjs cpu, wasm, webgl) or the in-bounds pixels only (TensorFlow, i.e. tfjs-node, which matches the
 * forward avgPool of every backend). Probed once per backend on a 1×2 input, 2×1 window, 'same'.
 */
export function avgPoolGradDivisor(): 'full-window' | 'in-bounds' {
  const backend = tf.getBackend();
  let style = avgPoolGradStyle.get(backend);
  if (style === undefined) {
    const dx = tf.tidy(() =>
      runKernel(tf.AvgPoolGrad, { dy: tf.ones([1, 1, 1, 1]), input: tf.zeros([1, 1, 1, 1]) }, {
        filterSize: [2, 1],
        strides: [2, 1],
        pad: 'same',
      }).dataSync()[0]!,
    );
    // one pixel in bounds of a 2-pixel window: 1/2 when dividing by the window, 1 by the pixels
    style = Math.abs(dx - 1) < 1e-6 ? 'in-bounds' : 'full-window';
    avgPoolGradStyle.set(backend, style);
  }
  return style;
}
