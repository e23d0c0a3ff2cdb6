// Manual measurement (not run by tests): training and inference speed of the tutorial ResNet on the wasm backend.
//
//   npx vite-node scripts/probe-wasm-train.ts -- [--micro 8] [--steps 8] [--infer-batch 32] [--profile]
//       [--skip-train]
//
// Training: one step = forward + backward + SGD-momentum update on a micro-batch, as src/model/train.ts does it;
// the figure is the median img/s over the steps after 2 warm-up steps. Inference: model.predict at --infer-batch.
// --profile prints the kernels that take the most time in one training step (tf.profile). Threads: as the CLI
// (one per core; MALARIA_WASM_THREADS=N for N).
import { tf } from '../src/tf.js';
import { selectBackend } from '../src/backends/select.js';
import { buildResNet } from '../src/model/resnet.js';

interface ProbeOptions {
  micro: number;
  steps: number;
  inferBatch: number;
  inferRuns: number;
  profile: boolean;
  skipTrain: boolean;
}

function parseArgs(argv: string[]): ProbeOptions {
  const options: ProbeOptions = { micro: 8, steps: 8, inferBatch: 32, inferRuns: 5, profile: false, skipTrain: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => Number(argv[++i]);
    if (arg === '--micro') options.micro = next();
    else if (arg === '--steps') options.steps = next();
    else if (arg === '--infer-batch') options.inferBatch = next();
    else if (arg === '--infer-runs') options.inferRuns = next();
    else if (arg === '--profile') options.profile = true;
    else if (arg === '--skip-train') options.skipTrain = true;
    else if (arg !== '--') throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function trainingStep(model: tf.LayersModel, optimizer: tf.Optimizer, images: tf.Tensor, oneHot: tf.Tensor): void {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const probabilities = model.apply(images, { training: true }) as tf.Tensor;
      const crossEntropy = tf.mean(tf.metrics.categoricalCrossentropy(oneHot, probabilities));
      return tf.add(crossEntropy, tf.addN(model.calculateLosses())) as tf.Scalar;
    }, variables);
    optimizer.applyGradients(grads);
    value.dataSync();
  });
}

async function profileStep(model: tf.LayersModel, optimizer: tf.Optimizer, images: tf.Tensor, oneHot: tf.Tensor) {
  const info = await tf.profile(() => trainingStep(model, optimizer, images, oneHot));
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = Number(k.kernelTimeMs);
    total += ms;
    const key = k.name;
    const entry = byKernel.get(key) ?? { ms: 0, calls: 0 };
    entry.ms += ms;
    entry.calls++;
    byKernel.set(key, entry);
  }
  console.log(`profile: ${info.kernels.length} kernels, ${total.toFixed(0)} ms in kernels`);
  for (const [name, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
    console.log(
      `  ${name.padEnd(24)} ${ms.toFixed(0).padStart(6)} ms  ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${calls} calls`,
    );
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  await selectBackend('wasm');
  const model = buildResNet({ inputSize: 64, classes: 2, stages: [3, 4, 6], filters: [64, 128, 256, 512], l2: 1e-4 });
  const threads = (
    tf.backend() as unknown as { wasm: { tfjs: { getThreadsCount(): number } } }
  ).wasm.tfjs.getThreadsCount();
  console.log(
    `backend ${tf.getBackend()} (${threads} thread${threads === 1 ? '' : 's'}), params ${model.countParams()}`,
  );
  const result: Record<string, number> = {};

  if (!options.skipTrain) {
    const optimizer = tf.train.momentum(0.01, 0.9);
    const images = tf.randomUniform([options.micro, 64, 64, 3]);
    const oneHot = tf.oneHot(
      tf.tensor1d(
        Array.from({ length: options.micro }, (_, i) => i % 2),
        'int32',
      ),
      2,
    );
    const rates: number[] = [];
    for (let step = 0; step < options.steps + 2; step++) {
      const start = performance.now();
      trainingStep(model, optimizer, images, oneHot);
      const seconds = (performance.now() - start) / 1000;
      if (step >= 2) rates.push(options.micro / seconds);
      console.log(`train step ${step}: ${(options.micro / seconds).toFixed(2)} img/s${step < 2 ? ' (warm-up)' : ''}`);
    }
    result.train_img_s = Number(median(rates).toFixed(2));
    result.micro_batch = options.micro;
    if (options.profile) await profileStep(model, optimizer, images, oneHot);
    tf.dispose([images, oneHot]);
    optimizer.dispose();
  }

  const batch = tf.randomUniform([options.inferBatch, 64, 64, 3]);
  tf.tidy(() => (model.predict(batch) as tf.Tensor).dataSync());
  const inferRates: number[] = [];
  for (let run = 0; run < options.inferRuns; run++) {
    const start = performance.now();
    tf.tidy(() => (model.predict(batch) as tf.Tensor).dataSync());
    inferRates.push(options.inferBatch / ((performance.now() - start) / 1000));
  }
  result.infer_img_s = Number(median(inferRates).toFixed(2));
  result.threads = threads;
  console.log(`predict ${result.infer_img_s} img/s at batch ${options.inferBatch}`);
  batch.dispose();
  model.dispose();
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
