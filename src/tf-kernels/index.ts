// Gradient kernels that the wasm backend lacks, registered so that it can train convolutional models.
import { tf } from '../tf.js';

let registered = false;

/** Registers the missing wasm kernels once (placeholder until the kernels land). */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  void tf;
}
