import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { UserError } from '../../src/errors.js';
import { loadCheckpoint, loadCheckpointState } from '../../src/model/checkpoint.js';
import { loadHistory, loadModel } from '../../src/model/io.js';
import { crossEntropyAndAccuracy, predictProbabilities } from '../../src/model/predict.js';
import { DivergedError, type EpochEndInfo, resumeTraining, trainModel, trainStep } from '../../src/model/train.js';
import { withTempDir } from '../support/temp.js';
import { rewriteAsVersion1 } from '../support/checkpoints.js';
import {
  IMAGE_SIZE,
  maxAbsDifference,
  noBatchNormModel,
  TINY_ARCHITECTURE,
  tinyRecipe,
  tinyResNet,
  weightValues,
} from '../support/models.js';
import { MemorySource, syntheticImages, syntheticSource } from '../support/sources.js';
import { trackModels } from '../support/tensors.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

const track = trackModels();
afterEach(() => {
  vi.restoreAllMocks();
});

function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

describe('trainModel', () => {
  it('learns an easy task: the loss falls and validation accuracy rises, with progress reported per batch and epoch', async () => {
    const model = track(tinyResNet(1));
    const train = syntheticSource(32, 1, 8, { shuffleSeed: 3 });
    const val = syntheticSource(16, 2, 16);
    const batchEnds: { epoch: number; batch: number; batches: number; loss: number }[] = [];
    const epochEnds: EpochEndInfo[] = [];
    const rates = vi.spyOn(tf.MomentumOptimizer.prototype, 'setLearningRate');
    const tensorsBefore = tf.memory().numTensors;
    const result = await trainModel(model, train, val, tinyRecipe({ epochs: 3, lr: 0.1 }), {
      onBatchEnd: (info) => batchEnds.push(info),
      onEpochEnd: (info) => {
        epochEnds.push(info);
      },
    });
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    const { history } = result;
    expect(result).toMatchObject({ epochsCompleted: 3, stoppedEarly: false });
    expect(history.loss[2]).toBeLessThan(0.5 * history.loss[0]);
    expect(history.val_loss[2]).toBeLessThan(history.val_loss[0]);
    expect(history.val_accuracy[2]).toBeGreaterThanOrEqual(0.9);
    expect(train.epochsRequested).toEqual([0, 1, 2]);

    // The optimizer's rate follows the schedule, set once per epoch (the constructor sets the first one too).
    const schedule = [0.1, 0.2 / 3, 0.1 / 3].map((lr) => expect.closeTo(lr, 12));
    expect(rates.mock.calls.map(([lr]) => lr).slice(-3)).toEqual(schedule);
    expect(history.lr).toEqual(schedule);

    // 4 batches of 8 per epoch; the last running mean of an epoch is the epoch's loss.
    expect(batchEnds).toHaveLength(12);
    expect(batchEnds.map((b) => [b.epoch, b.batch, b.batches])).toEqual(
      [0, 1, 2].flatMap((e) => [0, 1, 2, 3].map((b) => [e, b, 4])),
    );
    [3, 7, 11].forEach((i, epoch) => expect(batchEnds[i].loss).toBeCloseTo(history.loss[epoch], 10));
    expect(epochEnds.map((e) => e.epoch)).toEqual([0, 1, 2]);
    epochEnds.forEach((e, i) => {
      expect(e).toMatchObject({
        loss: history.loss[i],
        accuracy: history.accuracy[i],
        valLoss: history.val_loss[i],
        valAccuracy: history.val_accuracy[i],
        lr: history.lr[i],
      });
      expect(e.seconds).toBeGreaterThan(0);
      // The peak only grows, and it is at least what the process holds now.
      expect(e.peakRssBytes).toBeGreaterThanOrEqual(i > 0 ? epochEnds[i - 1].peakRssBytes : 0);
      expect(e.peakRssBytes).toBeGreaterThan(20 * 1024 ** 2);
    });
    // What each epoch reports is what tf counts: the same count every epoch.
    expect(new Set(epochEnds.map((e) => e.tensors)).size).toBe(1);
  });

  it('keeps the tensor count flat from epoch to epoch', async () => {
    await withTempDir(async (dir) => {
      const model = track(tinyResNet(2));
      const counts: number[] = [];
      await trainModel(model, syntheticSource(8, 3, 8), syntheticSource(8, 4, 8), tinyRecipe({ epochs: 3 }), {
        modelDir: dir,
        onEpochEnd: (info) => {
          counts.push(tf.memory().numTensors);
          expect(info.tensors).toBe(tf.memory().numTensors);
        },
      });
      expect(counts).toHaveLength(3);
      expect(counts[1]).toBe(counts[0]);
      expect(counts[2]).toBe(counts[0]);
    });
  });
});

describe('trainStep', () => {
  it('changes of the optimizer’s learning rate take effect on the next step', () => {
    // Momentum SGD in tfjs: accumulation = 0.9 * accumulation + g; w -= lr * accumulation.
    const w = tf.variable(tf.scalar(0));
    const optimizer = tf.train.momentum(0.1, 0.9);
    const step = () => tf.tidy(() => optimizer.applyGradients([{ name: w.name, tensor: tf.scalar(1) }]));
    step(); // accumulation 1, w = -0.1
    optimizer.setLearningRate(0.05);
    step(); // accumulation 1.9, w = -0.1 - 0.05 * 1.9 (it would be -0.29 at the old rate)
    expect(w.dataSync()[0]).toBeCloseTo(-0.195, 6);
    optimizer.dispose();
    w.dispose();
  });

  it('with micro-batches of 8 (or uneven ones) makes the same update as one batch of 32 when there is no batch norm', async () => {
    const { x, labels } = syntheticImages(32, 21);
    const run = async (microBatchSize: number) => {
      const model = track(noBatchNormModel(3));
      const optimizer = tf.train.momentum(0.1, 0.9);
      const variables = trainableVariables(model);
      const initial = weightValues(model);
      // Two steps, so the momentum accumulated from the first one matters as well.
      const first = await trainStep(model, optimizer, variables, x, labels, 32, 2, microBatchSize);
      const second = await trainStep(model, optimizer, variables, x, labels, 32, 2, microBatchSize);
      optimizer.dispose();
      return { initial, weights: weightValues(model), first, second };
    };
    const whole = await run(32);
    expect(maxAbsDifference(whole.weights, whole.initial)).toBeGreaterThan(1e-3);
    for (const micro of [8, 10]) {
      const split = await run(micro);
      expect(maxAbsDifference(split.initial, whole.initial)).toBe(0);
      expect(maxAbsDifference(split.weights, whole.weights)).toBeLessThan(1e-5);
      expect(split.first.loss).toBeCloseTo(whole.first.loss, 5);
      expect(split.second.loss).toBeCloseTo(whole.second.loss, 5);
      expect(split.first.correct).toBe(whole.first.correct);
    }
  });

  it('makes a plain step on mean cross-entropy plus 5e-4 * sum(w^2) when the micro-batch covers the batch', async () => {
    const { x, labels } = syntheticImages(16, 22);
    const ours = track(noBatchNormModel(4));
    const reference = track(noBatchNormModel(4));
    const oursOptimizer = tf.train.momentum(0.1, 0.9);
    const referenceOptimizer = tf.train.momentum(0.1, 0.9);
    const step = await trainStep(ours, oursOptimizer, trainableVariables(ours), x, labels, 16, 2, 64);

    // The reference: the loss written out by hand, minimised in one step.
    const kernels = reference.layers.flatMap((layer) =>
      layer.trainableWeights.filter((w) => w.name.endsWith('kernel')).map((w) => w.read()),
    );
    expect(kernels).toHaveLength(2);
    const referenceLoss = referenceOptimizer.minimize(
      () =>
        tf.tidy(() => {
          const probabilities = reference.apply(tf.tensor4d(x, [16, IMAGE_SIZE, IMAGE_SIZE, 3]), {
            training: true,
          }) as tf.Tensor;
          const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), 2);
          const crossEntropy = tf.neg(
            tf.mean(tf.sum(tf.mul(oneHot, tf.log(tf.clipByValue(probabilities, 1e-7, 1 - 1e-7))), -1)),
          );
          const penalty = tf.mul(5e-4, tf.addN(kernels.map((k) => tf.sum(tf.square(k)))));
          return tf.add(crossEntropy, penalty) as tf.Scalar;
        }),
      true,
      trainableVariables(reference),
    ) as tf.Scalar;
    expect(step.loss).toBeCloseTo(referenceLoss.dataSync()[0], 5);
    referenceLoss.dispose();
    expect(maxAbsDifference(weightValues(ours), weightValues(reference))).toBeLessThan(1e-6);
    oursOptimizer.dispose();
    referenceOptimizer.dispose();
  });

  it('updates batch-norm moving statistics in training, and prediction leaves them alone', async () => {
    const model = track(tinyResNet(3));
    const movingMean = () => Array.from(model.getLayer('stage1_block1_bn2').getWeights()[2].dataSync());
    const movingVariance = () => Array.from(model.getLayer('stage1_block1_bn2').getWeights()[3].dataSync());
    const [mean0, variance0] = [movingMean(), movingVariance()];
    const { x, labels } = syntheticImages(8, 23);
    const optimizer = tf.train.momentum(0.1, 0.9);
    await trainStep(model, optimizer, trainableVariables(model), x, labels, 8, 2, 4);
    optimizer.dispose();
    const [mean1, variance1] = [movingMean(), movingVariance()];
    expect(mean1).not.toEqual(mean0);
    expect(variance1).not.toEqual(variance0);
    await predictProbabilities(model, new MemorySource(x, labels, IMAGE_SIZE, 8));
    expect(movingMean()).toEqual(mean1);
    expect(movingVariance()).toEqual(variance1);
  });
});

describe('schedule, label smoothing and the moving average of the weights', () => {
  it('saves the moving average of the weights as the model, validates it, and resumes it from the checkpoint', async () => {
    await withTempDir(async (root) => {
      const source = () => syntheticSource(16, 41, 8, { shuffleSeed: 3 });
      const val = syntheticSource(8, 42, 8);
      const decay = 0.8;

      // The same run without an average: the training weights after every step, averaged here by hand.
      const plainEpochs: EpochEndInfo[] = [];
      const plain = track(tinyResNet(9));
      let average = weightValues(plain).map((values) => Float64Array.from(values));
      let steps = 0;
      await trainModel(plain, source(), val, tinyRecipe({ epochs: 3 }), {
        onBatchEnd: () => {
          steps++;
          const d = Math.min(decay, (1 + steps) / (10 + steps));
          const now = weightValues(plain);
          average = average.map((values, i) => values.map((value, k) => d * value + (1 - d) * now[i][k]));
        },
        onEpochEnd: (info) => void plainEpochs.push(info),
      });

      const recipe = tinyRecipe({ epochs: 3, ema: decay });
      const straightEpochs: EpochEndInfo[] = [];
      const straightDir = path.join(root, 'straight');
      await trainModel(track(tinyResNet(9)), source(), val, recipe, {
        modelDir: straightDir,
        onEpochEnd: (info) => void straightEpochs.push(info),
      });
      // Averaging never disturbs training: the weights themselves validate as in the plain run.
      straightEpochs.forEach((info, i) => expect(info.trainingWeightsValAccuracy).toBe(plainEpochs[i].valAccuracy));
      expect(plainEpochs[0].trainingWeightsValAccuracy).toBeUndefined();
      const saved = track((await loadModel(straightDir)).model);
      const averaged = average.map((values) => Float32Array.from(values));
      expect(maxAbsDifference(weightValues(saved), averaged)).toBeLessThan(1e-5);
      expect(maxAbsDifference(weightValues(saved), weightValues(plain))).toBeGreaterThan(1e-3);
      // ...and val_accuracy is the saved model's.
      const { accuracy } = crossEntropyAndAccuracy(await predictProbabilities(saved, val));
      expect(straightEpochs[2].valAccuracy).toBe(accuracy);

      // Stopped after epoch 1 and resumed: the average continues from the checkpoint to the same model.
      const stoppedDir = path.join(root, 'stopped');
      const controller = new AbortController();
      await trainModel(track(tinyResNet(9)), source(), val, recipe, {
        modelDir: stoppedDir,
        signal: controller.signal,
        onBatchEnd: ({ epoch }) => {
          if (epoch === 1) controller.abort();
        },
      });
      const checkpoint = await loadCheckpoint(stoppedDir);
      track(checkpoint.model);
      expect(checkpoint.average?.steps).toBe(2);
      await resumeTraining(checkpoint, source(), val, { modelDir: stoppedDir });
      const resumed = track((await loadModel(stoppedDir)).model);
      expect(maxAbsDifference(weightValues(resumed), weightValues(saved))).toBeLessThan(1e-5);
    });
  });

  it('keeps the tensor count flat from epoch to epoch with an average, cosine schedule and warm-up', async () => {
    await withTempDir(async (dir) => {
      const counts: number[] = [];
      const recipe = tinyRecipe({ epochs: 3, ema: 0.9, schedule: 'cosine', warmup: 1 });
      const result = await trainModel(
        track(tinyResNet(2)),
        syntheticSource(16, 3, 8),
        syntheticSource(8, 4, 8),
        recipe,
        {
          modelDir: dir,
          onEpochEnd: () => void counts.push(tf.memory().numTensors),
        },
      );
      expect(counts[1]).toBe(counts[0]);
      expect(counts[2]).toBe(counts[0]);
      // The recorded rate is the epoch's first step's: half way through the warm-up, then the cosine.
      expect(result.history.lr[0]).toBeCloseTo(0.025, 12);
      expect(result.history.lr[1]).toBeCloseTo(0.05 * 0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    });
  });

  it('trains towards smoothed targets: the loss is the cross-entropy against (1 - s) * one-hot + s / classes', async () => {
    const { x, labels } = syntheticImages(8, 24);
    const model = track(noBatchNormModel(4, 0));
    const probabilities = tf.tidy(() =>
      (model.apply(tf.tensor4d(x, [8, IMAGE_SIZE, IMAGE_SIZE, 3]), { training: true }) as tf.Tensor).arraySync(),
    ) as number[][];
    const s = 0.2;
    const expected =
      probabilities.reduce((sum, p, i) => {
        const target = [0, 1].map((c) => (c === labels[i] ? 1 - s : 0) + s / 2);
        return sum - target.reduce((t, value, c) => t + value * Math.log(p[c]), 0);
      }, 0) / 8;
    const optimizer = tf.train.momentum(0.01, 0.9);
    const step = await trainStep(model, optimizer, trainableVariables(model), x, labels, 8, 2, 8, s);
    optimizer.dispose();
    expect(step.loss).toBeCloseTo(expected, 4);
  });
});

describe('checkpoints, resume, stop and divergence', () => {
  it('resumes a stopped 4-epoch run to the same lr history and weights as an uninterrupted one', async () => {
    await withTempDir(async (root) => {
      const recipe = tinyRecipe({ epochs: 4, lr: 0.1 });
      const source = () => syntheticSource(8, 31, 4, { shuffleSeed: 5 });
      const val = syntheticSource(4, 32, 4);

      const straightDir = path.join(root, 'straight');
      const straight = track(tinyResNet(8));
      const full = await trainModel(straight, source(), val, recipe, { modelDir: straightDir });

      // Stop during the first batch of epoch 3 (after two complete epochs).
      const stoppedDir = path.join(root, 'stopped');
      const controller = new AbortController();
      const stopped = await trainModel(track(tinyResNet(8)), source(), val, recipe, {
        modelDir: stoppedDir,
        signal: controller.signal,
        onBatchEnd: ({ epoch, batch }) => {
          if (epoch === 2 && batch === 0) controller.abort();
        },
      });
      expect(stopped).toMatchObject({ epochsCompleted: 2, stoppedEarly: true });
      expect(stopped.history.lr).toHaveLength(2);
      // Nothing of the abandoned epoch was saved, and no final model was written.
      expect((await loadCheckpointState(stoppedDir)).epochsCompleted).toBe(2);
      expect((await loadHistory(stoppedDir)).loss).toEqual(stopped.history.loss);
      expect((await fs.readdir(stoppedDir)).sort()).toEqual(['checkpoint', 'history.json']);

      const checkpoint = await loadCheckpoint(stoppedDir);
      track(checkpoint.model);
      expect(checkpoint.recipe).toEqual(recipe);
      const resumedSource = source();
      const resumed = await resumeTraining(checkpoint, resumedSource, val, { modelDir: stoppedDir });
      expect(resumedSource.epochsRequested).toEqual([2, 3]);
      expect(resumed).toMatchObject({ epochsCompleted: 4, stoppedEarly: false });
      expect(resumed.history.lr).toEqual([0.1, 0.075, 0.05, 0.025].map((lr) => expect.closeTo(lr, 12)));
      expect((await loadHistory(stoppedDir)).lr).toEqual(resumed.history.lr);
      resumed.history.loss.forEach((loss, i) => expect(loss).toBeCloseTo(full.history.loss[i], 5));
      // Same weights as the uninterrupted run: the momentum accumulators were restored, not restarted.
      expect(maxAbsDifference(weightValues(checkpoint.model), weightValues(straight))).toBeLessThan(1e-5);

      const saved = await loadModel(stoppedDir);
      track(saved.model);
      expect(saved.metadata).toMatchObject({
        classNames: ['Parasitized', 'Uninfected'],
        imageSize: 32,
        channels: 3,
        scaling: 'x/255',
        resize: 'nearest',
        backend: 'cpu',
        architecture: TINY_ARCHITECTURE,
      });
      expect(maxAbsDifference(weightValues(saved.model), weightValues(straight))).toBeLessThan(1e-5);
    });
  });

  it('resumes with the micro-batch of the resuming process; a checkpoint that stored one (older versions) ignores it', async () => {
    await withTempDir(async (root) => {
      const recipe = tinyRecipe({ epochs: 2, lr: 0.1 });
      const source = () => syntheticSource(16, 61, 8, { shuffleSeed: 2 });
      const val = syntheticSource(8, 62, 8);
      // Epoch 1 with full batches of 8, then a stop before epoch 2.
      const stoppedDir = path.join(root, 'stopped');
      const controller = new AbortController();
      const stopped = await trainModel(track(tinyResNet(13)), source(), val, recipe, {
        modelDir: stoppedDir,
        signal: controller.signal,
        onEpochEnd: () => controller.abort(),
      });
      expect(stopped).toMatchObject({ epochsCompleted: 1, stoppedEarly: true });
      const copies = ['full', 'legacy', 'micro'].map((name) => path.join(root, name));
      for (const copy of copies) await fs.cp(stoppedDir, copy, { recursive: true });
      // What an older version wrote: the micro-batch of the backend that started the run, among the settings.
      await rewriteAsVersion1(copies[1], { edit: (old) => void (old.microBatchSize = 4) });

      const resume = async (dir: string, microBatchSize?: number) => {
        const checkpoint = await loadCheckpoint(dir);
        track(checkpoint.model);
        const result = await resumeTraining(checkpoint, source(), val, { modelDir: dir, microBatchSize });
        expect(result).toMatchObject({ epochsCompleted: 2, stoppedEarly: false });
        expect(result.history.lr).toEqual([0.1, 0.05].map((lr) => expect.closeTo(lr, 12)));
        expect(result.history.loss[0]).toBe(stopped.history.loss[0]);
        // The run's recipe goes on unchanged; no micro-batch is written among them.
        expect((await loadCheckpointState(dir)).recipe).toEqual(recipe);
        return weightValues(checkpoint.model);
      };
      const full = await resume(copies[0]);
      expect(maxAbsDifference(await resume(copies[1]), full)).toBe(0);
      // Micro-batches of 4 change what batch norm sees, so the weights must come out different.
      expect(maxAbsDifference(await resume(copies[2], 4), full)).toBeGreaterThan(1e-6);
    });
  });

  it('throws DivergedError on a NaN loss and leaves the last good checkpoint as it was', async () => {
    await withTempDir(async (dir) => {
      // Epoch 2, batch 2 carries a NaN pixel, which makes the loss NaN.
      const train = syntheticSource(16, 41, 8, {
        transform: (batch, epoch, index) => {
          if (epoch === 1 && index === 1) batch.x[5] = Number.NaN;
          return batch;
        },
      });
      let goodWeights: Buffer | undefined;
      const model = track(tinyResNet(9));
      const tensorsBefore = tf.memory().numTensors;
      const error = await trainModel(model, train, syntheticSource(8, 42, 8), tinyRecipe({ epochs: 3 }), {
        modelDir: dir,
        onEpochEnd: async () => {
          goodWeights = await fs.readFile(path.join(dir, 'checkpoint', 'weights.bin'));
        },
      }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(DivergedError);
      expect(error).toBeInstanceOf(UserError);
      expect((error as DivergedError).message).toBe('the loss diverged at epoch 2 batch 2; try a lower --lr');
      expect(error).toMatchObject({ epoch: 1, batch: 1, exitCode: 1 });
      expect(tf.memory().numTensors).toBe(tensorsBefore);

      expect(goodWeights).toBeDefined();
      expect((await loadCheckpointState(dir)).epochsCompleted).toBe(1);
      expect(await fs.readFile(path.join(dir, 'checkpoint', 'weights.bin'))).toEqual(goodWeights);
      expect((await loadHistory(dir)).loss).toHaveLength(1);
      expect(await fs.readdir(dir)).not.toContain('model.json');
      const checkpoint = await loadCheckpoint(dir);
      track(checkpoint.model);
      tf.dispose(checkpoint.optimizerWeights.map((w) => w.tensor));
      expect(weightValues(checkpoint.model).every((values) => values.every(Number.isFinite))).toBe(true);
    });
  });
});

describe('on the wasm backend (with the training kernels of src/tf-kernels)', () => {
  afterAll(async () => {
    await selectBackend('cpu');
  });

  it('trains with micro-batches to the same weights as the cpu backend, tensor count flat', async () => {
    const recipe = tinyRecipe({ epochs: 2 });
    const run = async (backend: 'cpu' | 'wasm') => {
      await selectBackend(backend);
      const model = track(tinyResNet(12));
      const counts: number[] = [];
      const result = await trainModel(
        model,
        syntheticSource(16, 51, 8, { shuffleSeed: 1 }),
        syntheticSource(8, 52, 8),
        recipe,
        {
          microBatchSize: 4,
          onEpochEnd: () => {
            counts.push(tf.memory().numTensors);
          },
        },
      );
      return { result, counts, weights: weightValues(model) };
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(wasm.counts[1]).toBe(wasm.counts[0]);
    wasm.result.history.loss.forEach((loss, i) => expect(loss).toBeCloseTo(cpu.result.history.loss[i], 4));
    expect(maxAbsDifference(cpu.weights, wasm.weights)).toBeLessThan(1e-4);
  });
});
