// Training-mode batch norm on wasm as one kernel: the batch's per-channel mean and variance and the normalised
// output, in three SIMD passes over the activation (batch-norm-wasm.ts), where tf.moments and tf.batchNorm run
// five kernels, three of them broadcasts of a per-channel vector (slow on XNNPACK at 16-128 channels).
// Outputs [y, mean, variance] as tfjs-layers' normalizeBatchInTraining gives them: the biased variance, and
// y = (x - mean) * scale / sqrt(variance + epsilon) + offset. Its gradient is lean-grads' training-mode batch-norm
// gradient (through the batch's own statistics); the mean and variance feed only the moving averages, off the
// path to the loss, so no gradient flows back through them.
import { tf } from '../tf.js';
import { blockTotals, BLOCK_PIXELS, simdBatchNorm } from './batch-norm-wasm.js';
import { batchNormTrainingGradients } from './batch-norm-training-grad.js';
import { KernelScope } from './kernel-scope.js';
import { asWasmBackend, byteOffset, floatIndex, heapF32 } from './wasm-heap.js';

export const BATCH_NORM_TRAINING = 'WasmBatchNormTraining';

/** Whether BATCH_NORM_TRAINING can run x (float32, channels last, a multiple of 4) on the current backend. */
export function canRunBatchNormTraining(x: tf.Tensor): boolean {
  if (tf.getBackend() !== 'wasm' || !tf.getKernel(BATCH_NORM_TRAINING, 'wasm')) return false;
  const channels = x.shape[x.rank - 1];
  return x.dtype === 'float32' && x.rank >= 2 && x.size > 0 && simdBatchNorm(tf.backend(), channels) !== undefined;
}

export const batchNormTrainingKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, scale, offset } = inputs as Record<'x' | 'scale' | 'offset', tf.TensorInfo>;
  const epsilon = (attrs as { varianceEpsilon: number }).varianceEpsilon;
  const channels = x.shape[x.shape.length - 1];
  const pixels = tf.util.sizeFromShape(x.shape) / channels;
  const simd = simdBatchNorm(backend, channels);
  if (!simd || x.dtype !== 'float32' || pixels === 0) throw new Error(`${BATCH_NORM_TRAINING}: unsupported input`);
  const scope = new KernelScope(backend as tf.KernelBackend, 'wasm');
  try {
    const wasm = asWasmBackend(backend);
    const blocks = Math.ceil(pixels / BLOCK_PIXELS);
    const partial = scope.alloc([blocks, channels]);
    const [mean, variance, gain] = [0, 1, 2].map(() => scope.alloc([channels]));
    const y = scope.alloc(x.shape.slice());
    const at = (t: tf.TensorInfo) => byteOffset(wasm, t);
    const rowBytes = 4 * channels;
    // Taken after the last allocation, which may have grown (and so detached) the heap.
    const heap = heapF32(wasm);
    const perChannel = (t: tf.TensorInfo) => heap.subarray(floatIndex(wasm, t), floatIndex(wasm, t) + channels);
    const [meanOut, varianceOut, gainOut, scaleIn] = [mean, variance, gain, scale].map(perChannel);
    simd.sum(at(x), 0, 0, pixels, rowBytes, at(partial));
    blockTotals(heap, floatIndex(wasm, partial), blocks, channels, 1, 0).forEach((total, c) => {
      meanOut[c] = total / pixels;
    });
    simd.squares(at(x), 0, at(mean), pixels, rowBytes, at(partial));
    blockTotals(heap, floatIndex(wasm, partial), blocks, channels, 1, 0).forEach((total, c) => {
      varianceOut[c] = total / pixels;
      gainOut[c] = scaleIn[c] / Math.sqrt(varianceOut[c] + epsilon);
    });
    simd.normalize(at(x), at(mean), at(gain), at(offset), pixels, rowBytes, at(y));
    scope.keep(y, mean, variance);
    return [y, mean, variance];
  } finally {
    scope.abandon();
  }
};

/** Its gradient: lean-grads' training-mode batch-norm gradient for x, scale and offset. */
export const batchNormTrainingGradConfig: tf.GradConfig = {
  kernelName: BATCH_NORM_TRAINING,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const [x, scale, mean, variance] = saved;
    const epsilon = (attrs as { varianceEpsilon: number }).varianceEpsilon;
    const gradients = batchNormTrainingGradients(x, mean, variance, scale, dy, epsilon);
    if (!gradients) throw new Error(`${BATCH_NORM_TRAINING}'s gradient runs on wasm only`);
    return { x: gradients.x, scale: gradients.scale, offset: gradients.offset };
  },
};
