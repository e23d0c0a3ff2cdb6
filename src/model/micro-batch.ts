// How many images one forward/backward pass takes. wasm32 caps the heap at 4 GB: the tutorial's ResNet at 64x64 ran
// out at 16 images and fits 8, so it trains in micro-batches with summed gradients. A smaller net fits the whole
// batch, which is faster (fewer, larger kernels) and lets batch norm see the whole batch, as in the tutorial.
import type { tf } from '../tf.js';
import type { BackendName } from '../backends/select.js';

// The wasm heap of a training step, fitted to what BENCHMARKS.md measured: base + images * bytes * activations.
// The tutorial's ResNet (21.4 M activation values an image) took 2.5 GB at 8 images and 3.45 GB at 12; stages
// 3,4,6 with filters 16..128 at 64x64 (5.4 M) took 2.52 GB at 32. About 2.8 float32 copies of every layer's output
// lived at once (the forward pass kept for the gradients, the gradients, temporaries). Those were tfjs' own
// gradients; since src/model/lean-grads.ts the tutorial's ResNet takes 0.63 GB at 8, 1.08 GB at 16 and 2.05 GB at
// 32 (heap sizes, one thread): this estimate is now a safe overestimate, kept until wasm's training figures are
// measured again with whole batches.
const WASM_BASE_BYTES = 0.6e9;
const WASM_BYTES_PER_ACTIVATION = 11.2;
/** Below wasm32's 4 GB, with room for fragmentation and the estimate's error (12 images of the tutorial's fit). */
const WASM_TRAIN_BUDGET_BYTES = 3.0e9;

/** Values of every layer's output for one image: what a training step keeps per image. */
export function activationsPerImage(model: tf.LayersModel): number {
  let values = 0;
  for (const layer of model.layers) {
    const shape = layer.outputShape;
    const shapes = (Array.isArray(shape[0]) ? shape : [shape]) as (number | null)[][];
    for (const one of shapes) values += one.slice(1).reduce<number>((product, size) => product * (size ?? 1), 1);
  }
  return values;
}

/** The wasm heap a training step of `images` images is expected to need. */
export function wasmTrainBytes(images: number, activations: number): number {
  return WASM_BASE_BYTES + images * activations * WASM_BYTES_PER_ACTIVATION;
}

/**
 * Images per forward/backward pass: the flag; else, on wasm, the batch halved until the step fits the heap (8 for
 * the tutorial's ResNet, the whole batch of 32 for the laptop preset's); else the batch.
 */
export function chooseMicroBatch(backend: BackendName, batchSize: number, activations: number, flag?: number): number {
  if (flag !== undefined) return flag;
  if (backend !== 'wasm') return batchSize;
  let images = batchSize;
  while (images > 1 && wasmTrainBytes(images, activations) > WASM_TRAIN_BUDGET_BYTES) images = Math.ceil(images / 2);
  return images;
}

/** The line `train` prints when a step ran out of GPU memory and is retried with smaller micro-batches. */
export function outOfMemoryLine(info: { microBatch: number; retryWith: number }): string {
  return (
    `the GPU ran out of memory with ${info.microBatch} images per pass: retrying the batch, and training from now on, ` +
    `in micro-batches of ${info.retryWith} with summed gradients (batch norm sees ${info.retryWith} images at a time)`
  );
}
