// Measures one backend in this process: loads it, then inference and training img/s of a ResNet for a few seconds
// each. `malaria backends` runs it in a child process per backend, because a loaded backend stays in its process.
import { UserError } from '../errors.js';
import { activationsPerImage, chooseMicroBatch } from '../model/micro-batch.js';
import { buildResNet, type ResNetOptions } from '../model/resnet.js';
import { trainStep } from '../model/train.js';
import { asWasmBackend } from '../tf-kernels/wasm-heap.js';
import { tf } from '../tf.js';
import { selectBackend, type BackendChoice, type BackendName } from '../backends/select.js';
import { activeStepGuard } from '../backends/device-memory.js';

export interface MeasureOptions {
  architecture: ResNetOptions;
  batchSize: number;
  /** Wall time to measure each of inference and training, after one warm-up batch each. */
  seconds: number;
}

/** What the measurement reports, one event at a time (a slow backend may be stopped between two). */
export type MeasureEvent =
  | { event: 'loaded'; backend: string; device: string; message: string }
  | { event: 'failed'; reason: string }
  | { event: 'infer'; imgPerSecond: number; batches: number }
  | {
      event: 'train';
      imgPerSecond: number;
      steps: number;
      microBatch: number;
      /** What a training step used (see StepMemory); absent where it cannot be read. */
      memoryBytes?: number;
      memoryKind?: MemoryKind;
    };

/**
 * What the memory figure of a training step is on each backend: the device memory tfjs held (webgpu, buffers it
 * keeps for reuse included), the wasm heap (it only grows: its size is the peak), or the most bytes of tensors
 * alive at once (cpu, and tensorflow, whose own allocator reserves more on a GPU).
 */
export type MemoryKind = 'device' | 'heap' | 'tensors';

function memoryKind(backend: BackendName): MemoryKind {
  return backend === 'webgpu' ? 'device' : backend === 'wasm' ? 'heap' : 'tensors';
}

/** The wasm backend's heap, which grows to what the largest step needed and never shrinks. */
function wasmHeapBytes(): number | undefined {
  try {
    return asWasmBackend(tf.backend()).wasm.HEAPU8.byteLength;
  } catch {
    return undefined;
  }
}

/** Runs `work` once to warm up (shader compilation, allocation), then repeatedly for `seconds`; returns runs per second. */
async function rate(work: () => Promise<void>, seconds: number): Promise<{ perSecond: number; runs: number }> {
  await work();
  const started = performance.now();
  let runs = 0;
  do {
    await work();
    runs++;
  } while (performance.now() - started < seconds * 1000);
  return { perSecond: runs / ((performance.now() - started) / 1000), runs };
}

/** Loads `choice` (`auto` only loads) and measures it, reporting through `emit`; never throws a UserError. */
export async function measureBackend(
  choice: BackendChoice,
  options: MeasureOptions,
  emit: (event: MeasureEvent) => void,
): Promise<void> {
  let backend;
  try {
    backend = await selectBackend(choice);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    emit({ event: 'failed', reason: err.message });
    return;
  }
  emit({ event: 'loaded', backend: backend.name, device: backend.device, message: backend.message });
  if (choice === 'auto') return;

  const { architecture, batchSize } = options;
  const size = architecture.inputSize;
  const model = buildResNet(architecture);
  const pixels = Float32Array.from({ length: batchSize * size * size * 3 }, (_, i) => (i % 251) / 251);
  const labels = Int32Array.from({ length: batchSize }, (_, i) => i % architecture.classes);
  try {
    const x = tf.tensor4d(pixels, [batchSize, size, size, 3]);
    const infer = await rate(async () => {
      const out = model.predict(x) as tf.Tensor;
      await out.data(); // one download per batch
      out.dispose();
    }, options.seconds);
    x.dispose();
    emit({ event: 'infer', imgPerSecond: infer.perSecond * batchSize, batches: infer.runs });

    // As `train` runs it: micro-batches only where wasm's 4 GB need them, halved where a GPU runs out of memory.
    let microBatch = chooseMicroBatch(backend.name, batchSize, activationsPerImage(model));
    const optimizer = tf.train.momentum(0.01, 0.9);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const step = async () => {
      const result = await trainStep(
        model,
        optimizer,
        variables,
        pixels,
        labels,
        batchSize,
        architecture.classes,
        microBatch,
      );
      microBatch = result.microBatch;
    };
    const kind = memoryKind(backend.name);
    const guard = activeStepGuard();
    // What training needs, as in a `train` process: not the buffers inference left pooled for reuse.
    guard?.releasePooled();
    guard?.resetPeak();
    let tensorPeak: number | undefined;
    if (kind === 'tensors') tensorPeak = (await tf.profile(step)).peakBytes;
    const train = await rate(step, options.seconds);
    optimizer.dispose();
    const memoryBytes = kind === 'device' ? guard?.bytes().peak : kind === 'heap' ? wasmHeapBytes() : tensorPeak;
    emit({
      event: 'train',
      imgPerSecond: train.perSecond * batchSize,
      steps: train.runs,
      microBatch,
      ...(memoryBytes === undefined ? {} : { memoryBytes, memoryKind: kind }),
    });
  } finally {
    model.dispose();
  }
}
