// A cheaper gradient for FusedBatchNorm (tf.batchNorm) on wasm.
//
// tfjs-core's gradient is written with generic ops: about a dozen passes over the activation per batch norm
// (sub, several multiplies, a Tile of 1/sqrt(var) to the full shape, four reductions), and two of its full-size
// temporaries (x - mean, dy * scale) are made outside the per-input tidy, so they live until the whole backward
// pass ends. Every gradient here follows from two per-channel sums, sum(dy) and sum(dy * x), which one kernel
// (WasmBatchNormGradSums) gathers with one multiply and two poolings; dx is one broadcast multiply, made only
// when asked for:
//   dx     = dy * scale * r                     r = 1 / sqrt(variance + epsilon)
//   dmean  = -scale * r * sum(dy)
//   dvar   = -scale * r^3 / 2 * (sum(dy*x) - mean * sum(dy))
//   dscale = r * (sum(dy*x) - mean * sum(dy))
//   doffset = sum(dy)
// Gradients are registered per kernel for all backends, so the original stays in charge off wasm (and for
// statistics that are not one value per channel of the last axis).
import { tf } from '../tf.js';
import { KernelScope } from './kernel-scope.js';
import { blockMean } from './reduce.js';
import { asWasmBackend, floatIndex, heapF32 } from './wasm-heap.js';

export const BATCH_NORM_GRAD_SUMS = 'WasmBatchNormGradSums';

/** [sum(dy), sum(dy * x)] over every axis but the last: XNNPACK multiply and average pooling. */
export const batchNormGradSumsKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const channels = x.shape[x.shape.length - 1];
  const rows = x.shape.reduce((a, b) => a * b, 1) / channels;
  const scope = new KernelScope(backend as tf.KernelBackend, 'wasm');
  try {
    const sums = [dy, scope.run('Multiply', { a: dy, b: x })].map((t) => {
      const mean = blockMean(scope, t, 1, rows, channels);
      const sum = scope.alloc([channels]);
      const wasm = asWasmBackend(backend);
      const heap = heapF32(wasm);
      const from = floatIndex(wasm, mean);
      const to = floatIndex(wasm, sum);
      for (let c = 0; c < channels; c++) heap[to + c] = heap[from + c] * rows;
      return sum;
    });
    scope.keep(...sums);
    scope.abandon();
    return sums;
  } catch (err) {
    scope.abandon();
    throw err;
  }
};

function perChannel(x: tf.Tensor, mean: tf.Tensor): boolean {
  const channels = x.shape[x.rank - 1];
  return mean.rank === 1 && mean.shape[0] === channels && x.dtype === 'float32' && x.rank >= 2;
}

/** The FusedBatchNorm gradient config: ours on wasm, `original` elsewhere. */
export function makeBatchNormGradConfig(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: 'FusedBatchNorm',
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved;
      if (tf.getBackend() !== 'wasm' || Array.isArray(dy) || !perChannel(x, mean)) {
        return original.gradFunc(dy, saved, attrs);
      }
      const { varianceEpsilon } = attrs as { varianceEpsilon: number };
      // Per-channel values only: these small tensors may live until the backward pass ends.
      const [rstd, scaled, centredSum, sumDy] = tf.tidy(() => {
        const [sDy, sDyX] = tf.engine().runKernel(BATCH_NORM_GRAD_SUMS, { x, dy }) as tf.Tensor[];
        const r = tf.rsqrt(tf.add(variance, varianceEpsilon));
        const s = scale == null ? r : tf.mul(scale, r);
        return [r, s, tf.sub(sDyX, tf.mul(mean, sDy)), sDy];
      });
      return {
        x: () => tf.mul(dy, scaled),
        mean: () => tf.neg(tf.mul(scaled, sumDy)),
        variance: () => tf.mul(tf.mul(scaled, tf.mul(tf.square(rstd), -0.5)), centredSum),
        scale: () => tf.mul(rstd, centredSum),
        offset: () => tf.clone(sumDy),
      };
    },
  };
}
