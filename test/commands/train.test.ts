// `malaria train` as a user sees it: the model line it starts with (the parameter counts the README quotes).
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend, tf } from '../../src/tf.js';
import { modelLine } from '../../src/report/training-log.js';
import { TRAIN_DEFAULTS } from '../../src/config.js';
import { buildDataset } from '../../src/data/build-dataset.js';
import { buildResNet } from '../../src/model/resnet.js';
import { runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, splitOptions } from '../support/sample.js';

let dir: string;
const data = () => path.join(dir, 'data');

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-train-cli-');
  await copySample(path.join(dir, 'cell_images'), 12);
  await buildDataset(splitOptions(path.join(dir, 'cell_images'), data()));
});

afterAll(async () => removeDir(dir));

/** Numbers held by these weights, counted from their shapes. */
const numbers = (weights: tf.LayerVariable[]) =>
  weights.reduce((sum, w) => sum + w.shape.reduce((a: number, b) => a * (b as number), 1), 0);

describe('malaria train', () => {
  it('starts by naming the model with its parameter counts, all and trainable', async () => {
    const modelDir = path.join(dir, 'model');
    const tiny = [
      '--stages',
      '1,1,1',
      '--filters',
      '4,4,8,8',
      '--image-size',
      '16',
      '--batch-size',
      '8',
      '--backend',
      'cpu',
    ];
    const reference = buildResNet({ inputSize: 16, classes: 2, stages: [1, 1, 1], filters: [4, 4, 8, 8], seed: 42 });
    const all = numbers(reference.weights);
    const trainable = numbers(reference.trainableWeights);
    reference.dispose();
    expect(trainable).toBeLessThan(all);
    const expected = `model: ResNet stages 1,1,1 filters 4,4,8,8: ${all.toLocaleString('en-US')} parameters (${trainable.toLocaleString('en-US')} trainable), 16x16 input`;

    const fresh = await runInProcess([
      'train',
      '--data',
      data(),
      '--model-dir',
      modelDir,
      '--plot',
      path.join(dir, 'plot.png'),
      '--epochs',
      '1',
      ...tiny,
    ]);
    expect(fresh.code, fresh.stderr.join('\n')).toBe(0);
    expect(fresh.stdout.filter((line) => line.startsWith('model: '))).toEqual([expected]);
  });

  it('the README quotes the counts train prints for the tutorial ResNet', async () => {
    const model = buildResNet({ inputSize: TRAIN_DEFAULTS.imageSize, classes: 2, seed: 1 });
    const line = modelLine(model, {
      stages: [...TRAIN_DEFAULTS.stages],
      filters: [...TRAIN_DEFAULTS.filters],
      imageSize: TRAIN_DEFAULTS.imageSize,
    });
    expect(numbers(model.trainableWeights)).toBe(2_150_344);
    model.dispose();
    expect(line).toBe(
      'model: ResNet stages 3,4,6 filters 64,128,256,512: 2,163,918 parameters (2,150,344 trainable), 64x64 input',
    );
    const readme = (await fsp.readFile('README.md', 'utf8')).replace(/\s+/g, ' ');
    expect(readme).toContain(line);
    // Every count the README gives for a model of millions of parameters is this one.
    const millions = [...readme.matchAll(/(\d,\d{3},\d{3}) (?:trainable )?parameters/g)].map((m) => m[1]);
    expect(millions.length).toBeGreaterThan(0);
    expect(new Set(millions)).toEqual(new Set(['2,163,918']));
  });
});
