// Bad flags and missing things, for every command: one line that names the problem and the fix, exit code 2,
// no stack trace, nothing on stdout.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { lockPathFor, lockText } from '../../src/io/lock.js';
import { loadCheckpointState, saveCheckpoint } from '../../src/model/checkpoint.js';
import { expectOneErrorLine, runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, samplePaths } from '../support/sample.js';
import { saveBrightnessModel, tinyRecipe, tinyResNet } from '../support/models.js';

let dir: string;
let image: string;
const data = () => path.join(dir, 'data');
const model = () => path.join(dir, 'model');
const checkpointed = () => path.join(dir, 'checkpointed');
const missing = () => path.join(dir, 'missing');

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-flags-');
  [image] = await samplePaths('Parasitized', 1);
  await copySample(path.join(data(), 'testing'), { Parasitized: 1 });
  await saveBrightnessModel(model());
  // The checkpoint of a run on 32x32 images, batch 8, 3 epochs.
  const net = tinyResNet(1);
  const optimizer = tf.train.momentum(0.05, 0.9);
  await saveCheckpoint(checkpointed(), {
    model: net,
    optimizer,
    epochsCompleted: 1,
    history: { loss: [1], accuracy: [0.5], val_loss: [1], val_accuracy: [0.5], lr: [0.05] },
    recipe: tinyRecipe({ batchSize: 8, imageSize: 32 }),
    data: data(),
  });
  optimizer.dispose();
  net.dispose();
});

afterAll(async () => removeDir(dir));

const trainArgs = () => ['train', '--data', data(), '--model-dir', path.join(dir, 'new-model')];

/** [arguments, what the one line must match] */
function badFlags(): [string[], RegExp][] {
  const wholeAboveZero = /must be a whole number greater than 0/;
  const between = /must be a number between 0 and 1 \(exclusive\)/;
  return [
    [[...trainArgs(), '--epochs', '0'], /--epochs.*'0'.*whole number greater than 0/],
    [[...trainArgs(), '--epochs', '-3'], /--epochs.*'-3'.*whole number greater than 0/],
    [[...trainArgs(), '--epochs', '2.5'], wholeAboveZero],
    [[...trainArgs(), '--epochs', 'many'], wholeAboveZero],
    [[...trainArgs(), '--batch-size', '0'], /--batch-size.*'0'.*whole number greater than 0/],
    [[...trainArgs(), '--batch-size', '-8'], /--batch-size.*'-8'.*whole number greater than 0/],
    [[...trainArgs(), '--micro-batch', '0'], /--micro-batch.*whole number greater than 0/],
    [[...trainArgs(), '--lr', '0'], /--lr.*must be a number greater than 0/],
    [[...trainArgs(), '--lr', '-0.1'], /--lr.*must be a number greater than 0/],
    [[...trainArgs(), '--lr', 'NaN'], /--lr.*must be a number greater than 0/],
    [[...trainArgs(), '--image-size', '4'], /--image-size must be at least 8/],
    [[...trainArgs(), '--stages', '3,4', '--filters', '8,8'], /--filters needs 3 numbers/],
    [
      [...trainArgs(), '--backend', 'gpu'],
      /--backend.*'gpu' is invalid\. Allowed choices are auto, tensorflow, webgpu, wasm, cpu/,
    ],
    [[...trainArgs(), '--resume', '--force'], /--resume and --force contradict each other/],
    [
      ['build-dataset', '--input', data(), '--output', path.join(dir, 'split'), '--train-split', '0'],
      /--train-split.*'0'/,
    ],
    [['build-dataset', '--input', data(), '--output', path.join(dir, 'split'), '--train-split', '1'], between],
    [['build-dataset', '--input', data(), '--output', path.join(dir, 'split'), '--train-split', '1.5'], between],
    [
      ['build-dataset', '--input', data(), '--output', path.join(dir, 'split'), '--val-split', '-0.1'],
      /--val-split.*between 0 and 1/,
    ],
    [
      ['build-dataset', '--input', data(), '--output', path.join(dir, 'split'), '--val-split', '1'],
      /--val-split.*between 0 and 1/,
    ],
    [
      ['evaluate', '--data', data(), '--model-dir', model(), '--batch-size', '0'],
      /--batch-size.*whole number greater than 0/,
    ],
    [
      ['evaluate', '--data', data(), '--model-dir', model(), '--backend', 'tpu'],
      /--backend.*'tpu' is invalid\. Allowed choices are/,
    ],
    [['predict', '--model-dir', model(), '--batch-size', '-1', image], /--batch-size.*whole number greater than 0/],
    [
      ['predict', '--model-dir', model(), '--backend', 'metal', image],
      /--backend.*'metal' is invalid\. Allowed choices are/,
    ],
    [
      ['export', '--model-dir', model(), '--out', path.join(dir, 'out'), '--quantize', 'int4'],
      /--quantize.*'int4'.*uint8, float16, none/,
    ],
    [['export', '--model-dir', model()], /--out/],
    [
      ['app', '--model-dir', model(), '--out', path.join(dir, 'app'), '--port', '70000'],
      /--port.*port number from 0 to 65535/,
    ],
  ];
}

function missingThings(): [string[], RegExp][] {
  const notOurs = /not found; point it at a folder written by `malaria train`$/;
  return [
    [
      ['train', '--data', missing(), '--model-dir', path.join(dir, 'new-model')],
      /data folder .*missing not found: run `malaria build-dataset` first, or pass --data$/,
    ],
    [
      ['train', '--data', data(), '--model-dir', path.join(dir, 'empty-model'), '--resume'],
      /nothing to resume: .*empty-model holds no checkpoint; run without --resume$/,
    ],
    [
      ['train', '--model-dir', checkpointed(), '--resume', '--image-size', '64'],
      /--image-size 64 differs from the interrupted run's 32: resume with the same flags, or leave --image-size out$/,
    ],
    [
      ['train', '--model-dir', checkpointed(), '--resume', '--epochs', '5'],
      /--epochs 5 differs from the interrupted run's 3/,
    ],
    [
      ['train', '--model-dir', checkpointed(), '--resume', '--seed', '1'],
      /--seed 1 differs from the interrupted run's 7/,
    ],
    [
      ['build-dataset', '--input', missing(), '--output', path.join(dir, 'split')],
      /input folder .*missing not found; run `malaria download`/,
    ],
    [
      ['evaluate', '--data', missing(), '--model-dir', model(), '--backend', 'cpu'],
      /data folder .*missing\/testing not found: run `malaria build-dataset` first, or pass --data and --split$/,
    ],
    [
      ['evaluate', '--data', data(), '--split', 'validation', '--model-dir', model(), '--backend', 'cpu'],
      /data folder .*data\/validation not found/,
    ],
    [['evaluate', '--data', data(), '--model-dir', missing(), '--backend', 'cpu'], notOurs],
    [['predict', '--model-dir', missing(), '--backend', 'cpu', image], notOurs],
    [['export', '--model-dir', missing(), '--out', path.join(dir, 'out'), '--backend', 'cpu'], notOurs],
    [['app', '--model-dir', missing(), '--out', path.join(dir, 'app')], notOurs],
  ];
}

describe('bad flags and missing things', () => {
  it('a bad flag value: one line naming the flag and what it must be, exit code 2', async () => {
    for (const [args, pattern] of badFlags()) {
      const result = await runInProcess(args);
      const what = args.filter((a) => a.startsWith('--')).join(' ');
      expect(result.code, what).toBe(2);
      expect(result.stdout, what).toEqual([]);
      expectOneErrorLine(result, pattern, `${args[0]} ${what}`);
    }
  });

  it("a value out of its flag's range is refused as the flag is read: before the output folder is locked or looked at", async () => {
    // Another run (the test runner's parent process: alive, not this one) holds both output folders.
    const modelDir = path.join(dir, 'held-model');
    const out = path.join(dir, 'held-crossval');
    const locks = await Promise.all([modelDir, out].map((folder) => lockPathFor(folder)));
    for (const lock of locks) await fsp.writeFile(lock, lockText(process.ppid));
    try {
      const train = ['train', '--data', data(), '--model-dir', modelDir];
      const crossval = ['crossval', '--input', data(), '--out', out];
      const refusals: [string[], RegExp][] = [
        [[...train, '--image-size', '4'], /^malaria: --image-size must be at least 8$/],
        [[...train, '--rotation', '270'], /^malaria: --rotation must be between 0 and 180 degrees \(/],
        [[...train, '--color', '1'], /^malaria: --color must be at least 0 and below 1, for example 0\.1$/],
        [[...train, '--label-smoothing', '1'], /^malaria: --label-smoothing must be at least 0 and below 1/],
        [[...train, '--l2', '0.5'], /^malaria: --l2 must be below 0\.1 \(/],
        [[...train, '--ema', '1'], /^malaria: --ema must be 0 \(off\) or a decay between 0 and 1/],
        [[...crossval, '--rotation', '181'], /^malaria: --rotation must be between 0 and 180 degrees \(/],
        [[...crossval, '--folds', '1'], /^malaria: --folds must be 2 or more/],
      ];
      for (const [args, pattern] of refusals) {
        const result = await runInProcess(args);
        expect(result.code, args.join(' ')).toBe(2);
        expectOneErrorLine(result, pattern, args.join(' '));
      }
      // In range, the same commands get as far as the lock.
      for (const args of [train, crossval]) {
        expectOneErrorLine(await runInProcess([...args, '--rotation', '90']), /is in use by malaria \(pid \d+\)/);
      }
    } finally {
      for (const lock of locks) await fsp.rm(lock);
    }
  });

  it('a missing folder or a resume that does not match its run: one line naming it and the fix, exit code 2, nothing written', async () => {
    const before = (await fsp.readdir(dir)).sort();
    const checkpointBefore = await loadCheckpointState(checkpointed());
    for (const [args, pattern] of missingThings()) {
      const result = await runInProcess(args);
      const what = args.join(' ');
      expect(result.code, what).toBe(2);
      expect(result.stdout, what).toEqual([]);
      expectOneErrorLine(result, pattern, what);
    }
    expect((await fsp.readdir(dir)).sort()).toEqual(before);
    expect(await loadCheckpointState(checkpointed())).toEqual(checkpointBefore);
  });
});
