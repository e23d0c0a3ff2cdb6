// The webgpu backend on the machine's WebGPU device (in CI: Mesa's software Vulkan device, llvmpipe, installed by
// scripts/test-setup.sh): sums of many tensors, and a tiny ResNet's training step against the cpu backend.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { UserError } from '../../src/errors.js';
import { activeStepGuard, type StepGuard } from '../../src/backends/device-memory.js';
import { setDeviceMemoryLimit } from '../../src/backends/webgpu.js';
import { activationsPerImage } from '../../src/model/micro-batch.js';
import { buildResNet } from '../../src/model/resnet.js';
import { regularizationPenalty, trainModel, trainStep, type OutOfMemoryInfo } from '../../src/model/train.js';
import { maxAbsDifference, tinyResNet, tinyRecipe } from '../support/models.js';
import { MemorySource, syntheticImages, syntheticSource } from '../support/sources.js';
import { withTempDir } from '../support/temp.js';
import { expectClose, onBackend, randomHost, requireWebgpuAdapter, toTensor } from '../support/backends.js';
import { expectStepMatchesCpu, STEP_RESNET } from '../support/resnet-step.js';

/** The number of storage buffers one webgpu program may bind on this device. */
function storageBufferLimit(): number {
  const backend = tf.findBackend('webgpu') as unknown as {
    device: { limits: { maxStorageBuffersPerShaderStage: number } };
  };
  return backend.device.limits.maxStorageBuffersPerShaderStage;
}

describe('the webgpu backend', () => {
  beforeAll(async () => {
    await requireWebgpuAdapter();
    await selectBackend('cpu');
    await selectBackend('webgpu');
  });

  it('sums more tensors in one addN than a program may bind, as cpu does', async () => {
    const count = 3 * storageBufferLimit() + 2;
    const inputs = Array.from({ length: count }, (_, i) => randomHost([7, 5], `addn/${i}`));
    const sum = () => [tf.addN(inputs.map(toTensor))];
    const [expected] = await onBackend('cpu', sum);
    const [actual] = await onBackend('webgpu', sum);
    expectClose(actual, expected, 1e-6, `addN of ${count}`);
  });

  it('computes the L2 penalty of a ResNet with more kernels than a program may bind, as cpu does', async () => {
    await tf.setBackend('cpu');
    const model = buildResNet(STEP_RESNET);
    const weights = model.getWeights().map((w) => ({ shape: w.shape.slice(), values: w.dataSync() as Float32Array }));
    expect(model.calculateLosses().length).toBeGreaterThan(storageBufferLimit());
    const [expected] = await onBackend('cpu', () => [regularizationPenalty(model)]);
    model.dispose();
    await tf.setBackend('webgpu');
    const onGpu = buildResNet(STEP_RESNET);
    onGpu.setWeights(weights.map(toTensor));
    const [actual] = await onBackend('webgpu', () => [regularizationPenalty(onGpu)]);
    onGpu.dispose();
    expectClose(actual, expected, 1e-5, 'L2 penalty');
  });

  it('gives a tiny ResNet training step the same loss and every gradient as cpu', () =>
    expectStepMatchesCpu('webgpu', 1e-5, 1e-4));
});

describe('training on webgpu', () => {
  beforeAll(async () => {
    await requireWebgpuAdapter();
    await selectBackend('webgpu');
  });

  it('keeps the tensor count flat from epoch to epoch', async () => {
    await tf.setBackend('webgpu');
    const model = tinyResNet(2);
    const counts: number[] = [];
    const result = await trainModel(
      model,
      syntheticSource(8, 3, 8),
      syntheticSource(8, 4, 8),
      tinyRecipe({ epochs: 3 }),
      {
        onEpochEnd: (info) => void counts.push(info.tensors),
      },
    );
    model.dispose();
    expect(result.history.loss.every(Number.isFinite)).toBe(true);
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
  });
});

/** A ResNet of the tutorial's shape whose activations outweigh its weights, as the tutorial's do at batch 32. */
const WIDE_RESNET = { inputSize: 32, classes: 2, stages: [2, 2, 2], filters: [16, 32, 64, 128], l2: 5e-4 };
const BATCH = 8;

function guard(): StepGuard {
  const found = activeStepGuard();
  if (!found) throw new Error('the webgpu backend has no step guard');
  return found;
}

/** Synthetic images of WIDE_RESNET's size, in batches of BATCH. */
function wideSource(n: number, seed: number): MemorySource {
  const { x, labels } = syntheticImages(n, seed, WIDE_RESNET.inputSize);
  return new MemorySource(x, labels, WIDE_RESNET.inputSize, BATCH);
}

/** A fresh model and optimizer, and a training step on one fixed batch, on webgpu. */
function stepParts(seed = 5) {
  const model = buildResNet({ ...WIDE_RESNET, seed });
  const optimizer = tf.train.momentum(0.05, 0.9);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { x, labels } = syntheticImages(BATCH, 11, WIDE_RESNET.inputSize);
  const run = (microBatch: number, onOutOfMemory?: (info: OutOfMemoryInfo) => void) =>
    trainStep(model, optimizer, variables, x, labels, BATCH, 2, microBatch, 0, onOutOfMemory);
  const values = async () => (await Promise.all(model.weights.map((w) => w.read().data()))) as Float32Array[];
  const dispose = () => {
    optimizer.dispose();
    model.dispose();
  };
  return { model, run, values, dispose };
}

/** The device memory a step at `microBatch` has in use at most: a cap below it makes the step run out. */
async function measureStepNeeds(microBatch: number): Promise<number> {
  const parts = stepParts();
  await parts.run(microBatch); // the first step makes the momentum
  const buffers = (tf.backend() as unknown as { bufferManager: { numBytesUsed: number } }).bufferManager;
  let most = 0;
  const acquire = Object.getOwnPropertyDescriptor(buffers, 'acquireBuffer')?.value as (...args: unknown[]) => unknown;
  Object.assign(buffers, {
    acquireBuffer: (...args: unknown[]) => {
      const buffer = acquire(...args);
      most = Math.max(most, buffers.numBytesUsed);
      return buffer;
    },
  });
  try {
    await parts.run(microBatch);
  } finally {
    Object.assign(buffers, { acquireBuffer: acquire });
    parts.dispose();
  }
  return most;
}

let needs: { whole: number; half: number } | undefined;
/** What a step of the whole batch and of half of it need, measured once for the tests that cap memory between. */
async function stepNeeds(): Promise<{ whole: number; half: number }> {
  needs ??= { whole: await measureStepNeeds(BATCH), half: await measureStepNeeds(BATCH / 2) };
  return needs;
}

describe('device memory of a training step on webgpu', () => {
  beforeAll(async () => {
    await requireWebgpuAdapter();
    await selectBackend('webgpu');
  });
  afterEach(() => setDeviceMemoryLimit(undefined));

  it('holds about one copy of the batch’s activations, pooled buffers included, not four', async () => {
    await tf.setBackend('webgpu');
    const { model, run, dispose } = stepParts();
    const activationBytes = 4 * BATCH * activationsPerImage(model);
    const weightBytes = 4 * model.countParams();
    expect(activationBytes).toBeGreaterThan(10 * weightBytes);
    await run(BATCH);
    guard().releasePooled();
    guard().resetPeak();
    for (let i = 0; i < 3; i++) await run(BATCH);
    const { held, peak } = guard().bytes();
    dispose();
    // The tutorial's goal, 4 GB at batch 32, is 1.46 copies of its activations; weights, momentum, gradients and
    // the new weights are 4 copies of the weights at most.
    expect(peak, `peak ${peak}, activations ${activationBytes}`).toBeLessThanOrEqual(
      1.46 * activationBytes + 4 * weightBytes,
    );
    expect(held).toBeLessThanOrEqual(peak);
  });

  it('retries a step that runs out of memory in halves, changing nothing before it fits', async () => {
    await tf.setBackend('webgpu');
    const { whole, half } = await stepNeeds();
    expect(whole).toBeGreaterThan(1.3 * half);

    // The same first step of the same model twice: at half the batch per pass, and capped between the two needs.
    const reference = stepParts();
    const capped = stepParts();
    let tensors = tf.memory().numTensors;
    const expected = await reference.run(BATCH / 2);
    const madeByStep = tf.memory().numTensors - tensors; // the momentum of each weight
    tensors = tf.memory().numTensors;
    const told: OutOfMemoryInfo[] = [];
    setDeviceMemoryLimit((whole + half) / 2);
    const actual = await capped.run(BATCH, (info) => told.push(info));
    setDeviceMemoryLimit(undefined);

    expect(told).toEqual([{ microBatch: BATCH, retryWith: BATCH / 2 }]);
    expect(actual).toEqual({ ...expected, microBatch: BATCH / 2 });
    // One update of the weights and of the moving statistics, as the uncapped step at that micro-batch made.
    expect(maxAbsDifference(await capped.values(), await reference.values())).toBeLessThanOrEqual(1e-6);
    expect(tf.memory().numTensors).toBe(tensors + madeByStep);
    reference.dispose();
    capped.dispose();
  });

  it('gives up in one line when not even one image per pass fits, and leaves the model as it was', async () => {
    await tf.setBackend('webgpu');
    const { run, values, dispose } = stepParts();
    const before = await values();
    const tensors = tf.memory().numTensors;
    const told: OutOfMemoryInfo[] = [];
    setDeviceMemoryLimit(1);
    const failure = await run(BATCH, (info) => told.push(info)).catch((err: unknown) => err);
    setDeviceMemoryLimit(undefined);
    expect(failure).toBeInstanceOf(UserError);
    expect((failure as UserError).message).toMatch(/^the GPU ran out of memory even for one image per pass: /);
    expect(told.map((info) => info.retryWith)).toEqual([4, 2, 1]);
    expect(maxAbsDifference(await values(), before)).toBe(0);
    expect(tf.memory().numTensors).toBe(tensors);
    // The device is still good: the next step, uncapped, trains.
    expect(Number.isFinite((await run(BATCH)).loss)).toBe(true);
    dispose();
  });

  it('keeps a run going after running out of memory: halved once, said once, no epoch lost, nothing in the checkpoint', () =>
    withTempDir(async (dir) => {
      await tf.setBackend('webgpu');
      const { whole, half } = await stepNeeds();
      const model = buildResNet({ ...WIDE_RESNET, seed: 5 });
      const told: OutOfMemoryInfo[] = [];
      const epochs: number[] = [];
      setDeviceMemoryLimit((whole + half) / 2);
      const result = await trainModel(model, wideSource(24, 3), wideSource(8, 4), tinyRecipe({ epochs: 2 }), {
        modelDir: dir,
        onOutOfMemory: (info) => told.push(info),
        onEpochEnd: (info) => void epochs.push(info.epoch),
      });
      setDeviceMemoryLimit(undefined);
      model.dispose();
      expect(told).toEqual([{ microBatch: BATCH, retryWith: BATCH / 2 }]);
      expect(result).toMatchObject({ epochsCompleted: 2, stoppedEarly: false });
      expect(epochs).toEqual([0, 1]);
      expect(result.history.loss.every(Number.isFinite)).toBe(true);
      const saved = (await fs.readdir(dir)).filter((file) => file.endsWith('.json'));
      expect(saved.length).toBeGreaterThan(0);
      for (const file of saved) expect(await fs.readFile(path.join(dir, file), 'utf8'), file).not.toMatch(/micro/i);
    }, 'malaria-webgpu-oom-'));
});
