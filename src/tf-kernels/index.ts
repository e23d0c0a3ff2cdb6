// Gradient kernels that the wasm backend lacks or runs slowly, registered so that it can train convolutional models.
import { tf } from '../tf.js';
import { conv2DBackpropFilterKernel } from './conv2d-backprop-filter.js';
import { makeConv2DBackpropInputKernel } from './conv2d-backprop-input.js';

export { conv2DBackpropFilter } from './conv2d-backprop-filter.js';
export { conv2DBackpropInput } from './conv2d-backprop-input.js';

const BACKEND = 'wasm';
let registered = false;

/** Replaces (or adds) one wasm kernel, without tfjs' "already registered" warning. */
function setKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, BACKEND)) tf.unregisterKernel(config.kernelName, BACKEND);
  tf.registerKernel(config);
}

/**
 * Registers the wasm training kernels once: Conv2DBackpropFilter (missing from wasm) and a faster
 * Conv2DBackpropInput. Call after importing @tensorflow/tfjs-backend-wasm and before the backend is used.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  setKernel({ kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: conv2DBackpropFilterKernel });

  // wasm's own kernel stays as the fallback for unequal strides; its setup (binding the C++ function) must
  // still run when the backend initialises, so the replacement carries it.
  const original = tf.getKernel('Conv2DBackpropInput', BACKEND);
  setKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: BACKEND,
    kernelFunc: makeConv2DBackpropInputKernel(original?.kernelFunc),
    setupFunc: original?.setupFunc,
    disposeFunc: original?.disposeFunc,
  });
}
