// `npm run build && node dist/scripts/webgpu-memory.js [--batch <n>] [--image-size <n>] [--tape lean|tfjs]`
// Where the webgpu backend's device memory goes in one training step of the tutorial's ResNet (the ResNet of
// `train`'s defaults, at a small batch: memory grows linearly with it). Every buffer tfjs' BufferManager hands out
// is tagged with the kernel that asked for it and the phase (forward pass, backward pass, optimizer); at the step's
// peak of buffers in use it prints them by phase and kernel, and after the step what the pool holds unused, by
// buffer size and by kind (storage, uniform, staging). `--tape tfjs` computes the gradients with tf.variableGrads
// (what trainStep did before src/model/lean-grads.ts) for comparison. Figures: BENCHMARKS.md, webgpu section.
import { Command, Option } from 'commander';
import { tf } from '../src/tf.js';
import { selectBackend } from '../src/backends/select.js';
import { buildResNet } from '../src/model/resnet.js';
import { batchTensor, imageShape } from '../src/model/predict.js';
import { regularizationPenalty } from '../src/model/train.js';
import { applyInTraining, leanVariableGrads } from '../src/model/lean-grads.js';
import { positiveInt } from '../src/commands/options.js';
import { TRAIN_DEFAULTS } from '../src/config.js';

interface Flags {
  batch: number;
  imageSize: number;
  tape: 'lean' | 'tfjs';
}

interface Buffer {
  size: number;
  usage: number;
}
interface BufferManager {
  numBytesUsed: number;
  numBytesAllocated: number;
  freeBuffers: Map<string, Buffer[]>;
  acquireBuffer(size: number, usage: number, mapped?: boolean, reuse?: boolean): Buffer;
  releaseBuffer(buffer: Buffer, reuse?: boolean): void;
}
interface EngineState {
  state: { gradientDepth: number; activeTape: unknown[] | null };
  runKernelFunc(params: { kernelName?: string }): unknown;
}

// GPUBufferUsage bits (https://www.w3.org/TR/webgpu/#buffer-usage).
const KIND: Record<number, string> = {
  140: 'storage (tensors)',
  72: 'uniform (kernel parameters)',
  6: 'staging (uploads)',
  9: 'staging (downloads)',
};
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

const flags = new Command('webgpu-memory')
  .option('--batch <n>', 'images in the step', positiveInt, 4)
  .option('--image-size <n>', 'input size of the tutorial ResNet', positiveInt, TRAIN_DEFAULTS.imageSize)
  .addOption(new Option('--tape <which>', 'whose gradients').choices(['lean', 'tfjs']).default('lean'))
  .parse(process.argv)
  .opts<Flags>();

await selectBackend('webgpu');
const engine = tf.engine() as unknown as EngineState;
const buffers = (tf.backend() as unknown as { bufferManager: BufferManager }).bufferManager;

// The kernel running now (kernels run kernels: the innermost counts) and the phase of the step.
const kernels: string[] = [];
let optimizing = false;
const phase = () =>
  optimizing
    ? 'optimizer'
    : engine.state.gradientDepth > 0
      ? 'forward'
      : engine.state.activeTape
        ? 'backward'
        : 'other';
const runKernelFunc = engine.runKernelFunc.bind(engine);
engine.runKernelFunc = (params) => {
  kernels.push(params.kernelName ?? 'custom');
  try {
    return runKernelFunc(params);
  } finally {
    kernels.pop();
  }
};

const tags = new Map<Buffer, string>();
let peak = 0;
let atPeak = new Map<string, number>();
const acquire = buffers.acquireBuffer.bind(buffers);
const release = buffers.releaseBuffer.bind(buffers);
buffers.acquireBuffer = (size, usage, mapped, reuse) => {
  const buffer = acquire(size, usage, mapped, reuse);
  const kind = usage === 140 ? '' : ` ${KIND[usage] ?? `usage ${usage}`}`;
  tags.set(buffer, `${phase()} ${kernels.at(-1) ?? '(upload)'}${kind}`);
  if (buffers.numBytesUsed > peak) {
    peak = buffers.numBytesUsed;
    atPeak = new Map();
    for (const [live, tag] of tags) atPeak.set(tag, (atPeak.get(tag) ?? 0) + live.size);
  }
  return buffer;
};
buffers.releaseBuffer = (buffer, reuse) => {
  tags.delete(buffer);
  release(buffer, reuse);
};

const size = flags.imageSize;
const model = buildResNet({
  inputSize: size,
  classes: 2,
  stages: TRAIN_DEFAULTS.stages,
  filters: TRAIN_DEFAULTS.filters,
  l2: TRAIN_DEFAULTS.l2,
  seed: 1,
});
const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
const optimizer: tf.Optimizer = tf.train.momentum(TRAIN_DEFAULTS.lr, TRAIN_DEFAULTS.momentum);
const pixels = Float32Array.from({ length: flags.batch * size * size * 3 }, (_, i) => (i % 251) / 251);
const labels = Int32Array.from({ length: flags.batch }, (_, i) => i % 2);

/** trainStep's loss and update, with the gradients of --tape. */
async function step(): Promise<void> {
  const { value, grads } = tf.tidy(() => {
    const images = batchTensor(pixels, flags.batch, imageShape(model));
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), 2);
    const loss = () => {
      const probabilities =
        flags.tape === 'lean' ? applyInTraining(model, images) : (model.apply(images, { training: true }) as tf.Tensor);
      const crossEntropy = tf.mean(tf.metrics.categoricalCrossentropy(oneHot, probabilities));
      return tf.add(crossEntropy, regularizationPenalty(model)) as tf.Scalar;
    };
    return flags.tape === 'lean' ? leanVariableGrads(loss, variables) : tf.variableGrads(loss, variables);
  });
  await value.data();
  optimizing = true;
  optimizer.applyGradients(grads);
  optimizing = false;
  tf.dispose([value, grads]);
  await tf.zeros([1]).data(); // submits the optimizer's kernels
}

// The first step creates the optimizer's momentum; the second is what every later step looks like.
await step();
peak = 0;
await step();

const activationBytes =
  4 *
  flags.batch *
  model.layers.reduce((sum, layer) => {
    const shape = layer.outputShape as number[];
    return sum + shape.slice(1).reduce((product, n) => product * (n ?? 1), 1);
  }, 0);
console.log(
  `tutorial ResNet ${size}x${size}, batch ${flags.batch}, gradients by ${flags.tape === 'lean' ? 'leanVariableGrads' : 'tf.variableGrads'}; ` +
    `every layer's output once: ${mb(activationBytes)}`,
);
console.log(
  `buffers in use at the step's peak: ${mb(peak)}; allocated after the step (pool included): ${mb(buffers.numBytesAllocated)}`,
);
console.log('\nin use at the peak, by phase and the kernel that made the buffer:');
for (const [tag, bytes] of [...atPeak].sort((a, b) => b[1] - a[1]).filter(([, bytes]) => bytes >= peak / 200)) {
  console.log(`  ${mb(bytes).padStart(10)}  ${tag}`);
}
const pooled = new Map<string, number>();
for (const [key, free] of buffers.freeBuffers) {
  if (!free.length) continue;
  const [bytes, usage] = key.split('_').map(Number);
  const label = usage === 140 ? `${bytes / 4} floats` : (KIND[usage] ?? `usage ${usage}`);
  pooled.set(label, (pooled.get(label) ?? 0) + bytes * free.length);
}
const pooledTotal = [...pooled.values()].reduce((a, b) => a + b, 0);
console.log(`\npooled but free after the step: ${mb(pooledTotal)}; the largest, by buffer size:`);
for (const [label, bytes] of [...pooled].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
  console.log(`  ${mb(bytes).padStart(10)}  ${label}`);
}
