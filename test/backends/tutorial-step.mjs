// Child process of webgpu-tutorial-step.test.ts (one synchronous training step on a software GPU blocks the event
// loop for minutes, longer than a vitest worker may stay silent). Imports the built code (npm test builds dist/).
// Prints one JSON line: the wasm loss, the webgpu loss, what the webgpu step did to the weights, the images per pass
// it was computed with, the most device memory tfjs held during it and the process's peak resident memory.
import seedrandom from 'seedrandom';
import { tf } from '../../dist/src/tf.js';
import { selectBackend } from '../../dist/src/backends/select.js';
import { buildResNet } from '../../dist/src/model/resnet.js';
import { regularizationPenalty, trainStep } from '../../dist/src/model/train.js';
import { batchTensor } from '../../dist/src/model/predict.js';
import { TRAIN_DEFAULTS } from '../../dist/src/config.js';
import { activeStepGuard } from '../../dist/src/backends/device-memory.js';

const BATCH = 32;
const size = TRAIN_DEFAULTS.imageSize;
const architecture = {
  inputSize: size,
  classes: 2,
  stages: [...TRAIN_DEFAULTS.stages],
  filters: [...TRAIN_DEFAULTS.filters],
  l2: TRAIN_DEFAULTS.l2,
  seed: 5,
};
const random = seedrandom('tutorial/images');
const images = Float32Array.from({ length: BATCH * size * size * 3 }, () => random()); // pixels in [0, 1)
const labels = Int32Array.from({ length: BATCH }, (_, i) => i % 2);

// wasm: the loss of the batch in training mode (batch norm over all 32 images), forward only: a backward pass at
// batch 32 would not fit in wasm's 4 GB.
await selectBackend('wasm');
const reference = buildResNet(architecture);
const weights = await Promise.all(
  reference.getWeights().map(async (w) => ({ shape: w.shape, values: await w.data() })),
);
const lossOnWasm = tf.tidy(() => {
  const probabilities = reference.apply(batchTensor(images, BATCH, [size, size, 3]), { training: true });
  const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), 2);
  return tf.add(tf.mean(tf.metrics.categoricalCrossentropy(oneHot, probabilities)), regularizationPenalty(reference));
});
const wasmLoss = (await lossOnWasm.data())[0];
const penalties = reference.calculateLosses().length;
lossOnWasm.dispose();
reference.dispose();

await selectBackend('webgpu');
const model = buildResNet(architecture);
model.setWeights(weights.map((w) => tf.tensor(w.values, w.shape)));
const variables = model.trainableWeights.map((w) => w.read());
const before = (await variables[0].data()).slice();
const optimizer = tf.train.momentum(0.01, 0.9);
activeStepGuard()?.resetPeak();
const started = performance.now();
const step = await trainStep(model, optimizer, variables, images, labels, BATCH, 2, BATCH);
const seconds = (performance.now() - started) / 1000;
const after = await variables[0].data();
console.log(
  JSON.stringify({
    penalties,
    wasmLoss,
    webgpuLoss: step.loss,
    weightsFinite: after.every(Number.isFinite),
    weightsChanged: after.some((v, i) => v !== before[i]),
    microBatch: step.microBatch,
    deviceBytes: activeStepGuard()?.bytes().peak,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    seconds,
  }),
);
