// Gradient kernels that the wasm backend lacks or runs slowly, registered so that it can train convolutional models.
import { tf } from '../tf.js';
import { makeAvgPoolGradKernel } from './avg-pool-grad.js';
import { makeFusedBatchNormKernel } from './batch-norm.js';
import { BATCH_NORM_GRAD_SUMS, batchNormGradSumsKernel, makeBatchNormGradConfig } from './batch-norm-grad.js';
import {
  BATCH_NORM_CENTRED_SUMS,
  BATCH_NORM_TRAINING_DX,
  batchNormCentredSumsKernel,
  batchNormTrainingDxKernel,
} from './batch-norm-training-grad.js';
import { BATCH_NORM_TRAINING, batchNormTrainingGradConfig, batchNormTrainingKernel } from './batch-norm-training.js';
import { conv2DBackpropFilterKernel } from './conv2d-backprop-filter.js';
import { makeConv2DBackpropInputKernel } from './conv2d-backprop-input.js';
import { INFERENCE_CONV2D, inferenceConvKernel } from './inference-conv.js';
import { makeMeanGradConfig } from './mean-grad.js';
import { makeReluKernel, RELU_GRAD, reluGradKernel } from './relu-wasm.js';
import { makeMeanKernel, makeSumKernel } from './reduce.js';
import { makeCastKernel, makeIdentityKernel } from './shared-data.js';
import { makeTileKernel } from './tile.js';

export { conv2DBackpropFilter } from './conv2d-backprop-filter.js';
export { conv2DBackpropInput } from './conv2d-backprop-input.js';

const BACKEND = 'wasm';
let registered = false;

/** Replaces (or adds) one wasm kernel, without tfjs' "already registered" warning. */
function setKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, BACKEND)) tf.unregisterKernel(config.kernelName, BACKEND);
  tf.registerKernel(config);
}

/** Replaces a wasm kernel by one built around the original, which keeps its setup (binding its C++ function). */
function wrapKernel(kernelName: string, make: (original: tf.KernelFunc | undefined) => tf.KernelFunc): void {
  const original = tf.getKernel(kernelName, BACKEND);
  setKernel({
    kernelName,
    backendName: BACKEND,
    kernelFunc: make(original?.kernelFunc),
    setupFunc: original?.setupFunc,
    disposeFunc: original?.disposeFunc,
  });
}

/**
 * Registers the wasm training kernels once: Conv2DBackpropFilter (missing from wasm); faster Conv2DBackpropInput,
 * FusedBatchNorm, Relu, Tile, AvgPoolGrad of non-overlapping pools, and Sum/Mean over leading axes; Identity and
 * same-dtype Cast that share memory instead of copying; and gradients of batch norm and Mean that take one or two
 * passes instead of several (on wasm only).
 * Call after importing @tensorflow/tfjs-backend-wasm and before the backend is used.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  setKernel({ kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: conv2DBackpropFilterKernel });
  // wasm's own kernels stay as fallbacks (unequal strides, strings, real casts).
  wrapKernel('Conv2DBackpropInput', makeConv2DBackpropInputKernel);
  wrapKernel('Tile', makeTileKernel);
  wrapKernel('Identity', makeIdentityKernel);
  wrapKernel('Cast', makeCastKernel);
  wrapKernel('Sum', makeSumKernel);
  wrapKernel('Mean', makeMeanKernel);
  wrapKernel('FusedBatchNorm', makeFusedBatchNormKernel);
  wrapKernel('AvgPoolGrad', makeAvgPoolGradKernel);
  wrapKernel('Relu', makeReluKernel);
  setKernel({ kernelName: RELU_GRAD, backendName: BACKEND, kernelFunc: reluGradKernel });
  // Not a training kernel: inference's convolution with its bias, residual add, batch norm and ReLU in one pass
  // (src/model/fold-batch-norm.ts).
  setKernel({ kernelName: INFERENCE_CONV2D, backendName: BACKEND, kernelFunc: inferenceConvKernel });

  // Gradients of batch norm and of the means in tf.moments. Gradients are registered for every backend; ours
  // defer to the originals off wasm.
  setKernel({ kernelName: BATCH_NORM_GRAD_SUMS, backendName: BACKEND, kernelFunc: batchNormGradSumsKernel });
  // The two kernels of training-mode batch norm's gradient (src/model/lean-grads.ts).
  setKernel({ kernelName: BATCH_NORM_CENTRED_SUMS, backendName: BACKEND, kernelFunc: batchNormCentredSumsKernel });
  setKernel({ kernelName: BATCH_NORM_TRAINING_DX, backendName: BACKEND, kernelFunc: batchNormTrainingDxKernel });
  // Training-mode batch norm in one kernel, with that gradient (src/model/training-batch-norm.ts uses it).
  setKernel({ kernelName: BATCH_NORM_TRAINING, backendName: BACKEND, kernelFunc: batchNormTrainingKernel });
  tf.registerGradient(batchNormTrainingGradConfig);
  const batchNormGrad = tf.getGradient('FusedBatchNorm');
  if (batchNormGrad) tf.registerGradient(makeBatchNormGradConfig(batchNormGrad));
  const meanGrad = tf.getGradient('Mean');
  if (meanGrad) tf.registerGradient(makeMeanGradConfig(meanGrad));
}
