// Resume anywhere: a run stopped on one backend continues on another. The micro-batch is the engine's choice for
// the backend at hand (the whole batch on cpu; on wasm what fits its memory, which for these tiny nets is the whole
// batch too; or --micro-batch), not a setting of the run that --resume enforces;
// the run's settings (epochs, learning-rate schedule, seed and so its shuffles and augmentation) carry on.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { buildDataset } from '../../src/dataset/build.js';
import { loadCheckpointState } from '../../src/model/checkpoint.js';
import { loadHistory, loadModel, type TrainingHistory } from '../../src/model/io.js';
import { type CliResult, ctrlCAt, runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, splitOptions } from '../support/sample.js';
import { rewriteAsVersion1 } from '../support/checkpoints.js';
import { maxAbsDifference, weightValues, TINY_MODEL_FLAGS } from '../support/models.js';

// Batch 16 of ~17 training images: two steps an epoch, the first a whole batch of 16.
const RUN = ['--epochs', '3', ...TINY_MODEL_FLAGS, '--batch-size', '16', '--seed', '5'];
const SCHEDULE = [0.1, 0.2 / 3, 0.1 / 3].map((lr) => expect.closeTo(lr, 12));
const MICRO_BATCH_LINE = /^batch 16 is trained as \d+ micro-batches of \d+/;

let dir: string;
const data = () => path.join(dir, 'data');
const trainArgs = (modelDir: string) => [
  'train',
  '--data',
  data(),
  '--model-dir',
  modelDir,
  '--plot',
  path.join(dir, 'plot.png'),
  ...RUN,
];

beforeAll(async () => {
  dir = await makeTempDir('malaria-resume-backends-');
  await copySample(path.join(dir, 'cell_images'), 12);
  await buildDataset(splitOptions(path.join(dir, 'cell_images'), data()));
});

afterAll(async () => {
  await selectBackend('cpu');
  await removeDir(dir);
});

/** Starts the run in a child process on `backend` and stops it with Ctrl-C during epoch 2: epoch 1 stays saved. */
async function startAndStop(
  modelDir: string,
  backend: string,
  extra: string[] = [],
): Promise<{ output: string[]; history: TrainingHistory }> {
  const stopped = await ctrlCAt([...trainArgs(modelDir), '--backend', backend, ...extra], 'Epoch 2/3');
  expect(stopped.code, stopped.stderr.join('\n')).toBe(130);
  expect((await loadCheckpointState(modelDir)).epochsCompleted).toBe(1);
  return { output: [...stopped.stdout, ...stopped.stderr], history: await loadHistory(modelDir) };
}

/** Checks that the resumed run finished the run's 3 epochs on its schedule after the stopped one's epoch 1. */
async function expectContinued(
  modelDir: string,
  resumed: CliResult,
  before: TrainingHistory,
  backend: string,
): Promise<void> {
  expect(resumed.code, resumed.stderr.join('\n')).toBe(0);
  expect(resumed.stdout).toContain(`resuming after epoch 1 of 3 from ${modelDir}`);
  expect(resumed.stdout.filter((line) => line.startsWith('model: '))).toEqual([
    expect.stringMatching(
      /^model: ResNet stages 1,1,1 filters 4,4,8,8: [\d,]+ parameters \([\d,]+ trainable\), 16x16 input$/,
    ),
  ]);
  expect(resumed.stdout.filter((line) => /^Epoch \d\/3 - /.test(line)).map((line) => line.slice(0, 9))).toEqual([
    'Epoch 2/3',
    'Epoch 3/3',
  ]);
  const history = await loadHistory(modelDir);
  expect(history.lr).toEqual(SCHEDULE);
  for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy'] as const) {
    expect(history[key], key).toHaveLength(3);
    expect(history[key][0], key).toBe(before[key][0]);
  }
  const { recipe, epochsCompleted } = await loadCheckpointState(modelDir);
  expect(epochsCompleted).toBe(3);
  expect(recipe).toMatchObject({ epochs: 3, lr: 0.1, seed: 5, batchSize: 16, imageSize: 16 });
  expect(recipe).not.toHaveProperty('microBatchSize');
  const saved = await loadModel(modelDir);
  saved.model.dispose();
  expect(saved.metadata.backend).toBe(backend);
}

describe('a run resumes on another backend', () => {
  it('started on cpu with whole batches, resumed on wasm with micro-batches of 8, on the same run', async () => {
    const modelDir = path.join(dir, 'cpu-then-wasm');
    const stopped = await startAndStop(modelDir, 'cpu');
    expect(stopped.output.filter((line) => MICRO_BATCH_LINE.test(line))).toEqual([]);
    const sameMicroBatch = path.join(dir, 'cpu-then-wasm-whole-batches');
    await fsp.cp(modelDir, sameMicroBatch, { recursive: true });

    const resumed = await runInProcess([...trainArgs(modelDir), '--backend', 'wasm', '--micro-batch', '8', '--resume']);
    expect(resumed.stdout.filter((line) => MICRO_BATCH_LINE.test(line))).toEqual([
      'batch 16 is trained as 2 micro-batches of 8 with summed gradients (one optimizer step per batch; batch norm sees 8 images at a time)',
    ]);
    await expectContinued(modelDir, resumed, stopped.history, 'wasm');

    // The same run resumed on wasm with whole batches (wasm's own choice for a net this small) ends where the
    // uninterrupted run on cpu ends: the same shuffles, augmentation, schedule and momentum, so the run and not just
    // its settings carried over.
    const straightDir = path.join(dir, 'straight-cpu');
    const straight = await runInProcess([...trainArgs(straightDir), '--backend', 'cpu']);
    expect(straight.code, straight.stderr.join('\n')).toBe(0);
    const whole = await runInProcess([...trainArgs(sameMicroBatch), '--backend', 'wasm', '--resume']);
    expect(whole.stdout.filter((line) => MICRO_BATCH_LINE.test(line))).toEqual([]);
    await expectContinued(sameMicroBatch, whole, stopped.history, 'wasm');
    const [expected, actual] = await Promise.all([straightDir, sameMicroBatch].map((folder) => loadModel(folder)));
    const difference = maxAbsDifference(weightValues(actual.model), weightValues(expected.model));
    expected.model.dispose();
    actual.model.dispose();
    expect(difference).toBeLessThan(1e-4);
    const [straightHistory, wholeHistory] = await Promise.all(
      [straightDir, sameMicroBatch].map((folder) => loadHistory(folder)),
    );
    wholeHistory.loss.forEach((loss, i) => expect(loss).toBeCloseTo(straightHistory.loss[i], 3));
  });

  it('started on wasm with micro-batches of 8, resumed on cpu with whole batches, also from a checkpoint that stored the micro-batch', async () => {
    const modelDir = path.join(dir, 'wasm-then-cpu');
    const stopped = await startAndStop(modelDir, 'wasm', ['--micro-batch', '8']);
    expect(stopped.output.filter((line) => MICRO_BATCH_LINE.test(line))).toHaveLength(1);
    // Older versions stored the micro-batch among the run's settings and enforced it on resume.
    await rewriteAsVersion1(modelDir, { backend: 'wasm', edit: (settings) => void (settings.microBatchSize = 8) });
    const chosen = path.join(dir, 'wasm-then-cpu-micro-batch-4');
    await fsp.cp(modelDir, chosen, { recursive: true });

    const resumed = await runInProcess([...trainArgs(modelDir), '--backend', 'cpu', '--resume']);
    expect(resumed.stdout.filter((line) => MICRO_BATCH_LINE.test(line))).toEqual([]);
    await expectContinued(modelDir, resumed, stopped.history, 'cpu');

    // --micro-batch on resume picks this process's micro-batch; it contradicts nothing of the run.
    const withFlag = await runInProcess([...trainArgs(chosen), '--backend', 'cpu', '--micro-batch', '4', '--resume']);
    expect(withFlag.stdout.filter((line) => MICRO_BATCH_LINE.test(line))[0]).toMatch(
      /^batch 16 is trained as 4 micro-batches of 4 /,
    );
    await expectContinued(chosen, withFlag, stopped.history, 'cpu');
  });
});
