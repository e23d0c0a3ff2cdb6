// The gradient of training-mode batch norm (src/model/lean-grads.ts, and BATCH_NORM_TRAINING's) on wasm in two
// kernels, each one pass over the activation:
//   the per-channel sums sum(dy) and sum(dy * (x - mean)), then, once the per-channel coefficients are known,
//   dx = dy * a + (x - mean) * b + k    a = scale * r, b = -a * r^2 * sum(dy * (x - mean)) / n,
//                                       k = -a * sum(dy) / n,  r = 1 / sqrt(variance + epsilon).
// Both are SIMD functions of our own (batch-norm-wasm.ts) when the channels are a multiple of 4; otherwise the
// sums come from batch-norm-grad.ts' kernel (one multiply, two XNNPACK poolings) and dx from two 1x1 depthwise
// convolutions and an add. Written with tfjs ops it was nine passes, four of them broadcasts of a per-channel
// vector, which XNNPACK runs 5-9x slower than same-shape ops at 8-16 channels (BENCHMARKS.md, issue 26).
import { tf } from '../tf.js';
import { batchNormGradSumsKernel } from './batch-norm-grad.js';
import { blockTotals, BLOCK_PIXELS, simdBatchNorm } from './batch-norm-wasm.js';
import { KernelScope, withKernelScope } from './kernel-scope.js';
import { asWasmBackend, byteOffset, floatIndex, heapF32 } from './wasm-heap.js';

export const BATCH_NORM_CENTRED_SUMS = 'WasmBatchNormCentredSums';
export const BATCH_NORM_TRAINING_DX = 'WasmBatchNormTrainingDx';

/**
 * [sum(dy), sum(dy * (x - mean))] per channel (the last axis) of x and dy: batch-norm-grad.ts' XNNPACK sums of dy
 * and dy * x, then sum(dy * x) - mean * sum(dy) per channel.
 */
export const batchNormCentredSumsKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy, mean } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo; mean: tf.TensorInfo };
  const channels = x.shape[x.shape.length - 1];
  const simd = simdBatchNorm(backend, channels);
  if (simd) {
    const pixels = tf.util.sizeFromShape(x.shape) / channels;
    const scope = new KernelScope(backend as tf.KernelBackend, 'wasm');
    try {
      const wasm = asWasmBackend(backend);
      const blocks = Math.ceil(pixels / BLOCK_PIXELS);
      const partial = scope.alloc([blocks, 2, channels]);
      const sums = [scope.alloc([channels]), scope.alloc([channels])];
      const at = (t: tf.TensorInfo) => byteOffset(wasm, t);
      simd.dual(at(dy), at(x), at(mean), pixels, 4 * channels, at(partial));
      const heap = heapF32(wasm);
      sums.forEach((sum, row) =>
        heap.set(blockTotals(heap, floatIndex(wasm, partial), blocks, channels, 2, row), floatIndex(wasm, sum)),
      );
      scope.keep(...sums);
      return sums;
    } finally {
      scope.abandon();
    }
  }
  const [sumDy, sumDyX] = batchNormGradSumsKernel({ inputs: { x, dy }, backend, attrs }) as tf.TensorInfo[];
  const wasm = asWasmBackend(backend);
  const heap = heapF32(wasm);
  const [s1, s2, m] = [sumDy, sumDyX, mean].map((t) => floatIndex(wasm, t));
  for (let c = 0; c < x.shape[x.shape.length - 1]; c++) heap[s2 + c] -= heap[m + c] * heap[s1 + c];
  return [sumDy, sumDyX];
};

/** dx = dy * a + (x - mean) * b + k, with a, b, k and mean one value per channel (the last axis). */
export const batchNormTrainingDxKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const { x, dy, mean, a, b, k } = inputs as Record<'x' | 'dy' | 'mean' | 'a' | 'b' | 'k', tf.TensorInfo>;
  const channels = x.shape[x.shape.length - 1];
  const simd = simdBatchNorm(backend, channels);
  return withKernelScope(backend, 'wasm', (scope) => {
    const wasm = asWasmBackend(scope.backend);
    if (simd) {
      const dx = scope.alloc(x.shape.slice());
      const at = (t: tf.TensorInfo) => byteOffset(wasm, t);
      const pixels = tf.util.sizeFromShape(x.shape) / channels;
      simd.dx(at(dy), at(x), at(mean), at(a), at(b), at(k), pixels, 4 * channels, at(dx));
      return dx;
    }
    const filterA = scope.alloc([1, 1, channels, 1]);
    const filterB = scope.alloc([1, 1, channels, 1]);
    const bias = scope.alloc([channels]);
    const heap = heapF32(wasm);
    const at = (t: tf.TensorInfo) => floatIndex(wasm, t);
    for (let c = 0; c < channels; c++) {
      heap[at(filterA) + c] = heap[at(a) + c];
      heap[at(filterB) + c] = heap[at(b) + c];
      heap[at(bias) + c] = heap[at(k) + c] - heap[at(mean) + c] * heap[at(b) + c];
    }
    const size = tf.util.sizeFromShape(x.shape);
    const image = (t: tf.TensorInfo) =>
      t.shape.length === 4 ? t : scope.reshape(t, [1, size / channels, 1, channels]);
    const attrs = { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], activation: 'linear' };
    const scaledDy = scope.run('DepthwiseConv2dNative', { x: image(dy), filter: filterA }, attrs);
    const shiftedX = scope.run('FusedDepthwiseConv2D', { x: image(x), filter: filterB, bias }, attrs);
    const dx = scope.run('Add', { a: scaledDy, b: shiftedX });
    return x.shape.length === 4 ? dx : scope.reshape(dx, x.shape);
  });
};

/** Gradient functions of lean-grads' training-mode batch norm: x through the batch's own mean and variance. */
export interface BatchNormTrainingGradients {
  x: () => tf.Tensor;
  scale: () => tf.Tensor;
  offset: () => tf.Tensor;
}

/**
 * The gradient on wasm, or undefined off wasm (and for anything but float32 with one statistic per
 * channel of the last axis), where the caller keeps its tfjs-ops formula.
 */
export function batchNormTrainingGradients(
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  scale: tf.Tensor | undefined,
  dy: tf.Tensor,
  epsilon: number,
): BatchNormTrainingGradients | undefined {
  const channels = x.shape[x.rank - 1];
  const perChannel = (t: tf.Tensor | undefined) =>
    t === undefined || (t.rank === 1 && t.shape[0] === channels && t.dtype === 'float32');
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || dy.dtype !== 'float32' || x.rank < 2) return undefined;
  if (![mean, variance, scale].every(perChannel) || !tf.getKernel(BATCH_NORM_TRAINING_DX, 'wasm')) return undefined;
  const count = x.size / channels;
  // Per-channel values only outlive these lines.
  const [sumDy, sumDyCentred, rstd] = tf.tidy(() => {
    const [s1, s2] = tf.engine().runKernel(BATCH_NORM_CENTRED_SUMS, { x, dy, mean }) as tf.Tensor[];
    return [s1, s2, tf.rsqrt(tf.add(variance, epsilon))];
  });
  return {
    x: () => {
      const [a, b, k] = tf.tidy(() => {
        const gain = scale ? tf.mul(scale, rstd) : rstd;
        return [
          gain,
          tf.neg(tf.mul(gain, tf.mul(tf.square(rstd), tf.div(sumDyCentred, count)))),
          tf.neg(tf.mul(gain, tf.div(sumDy, count))),
        ];
      });
      const dx = tf.engine().runKernel(BATCH_NORM_TRAINING_DX, { x, dy, mean, a, b, k }) as tf.Tensor;
      tf.dispose([a, b, k]);
      return dx;
    },
    scale: () => tf.mul(rstd, sumDyCentred),
    offset: () => tf.clone(sumDy),
  };
}
