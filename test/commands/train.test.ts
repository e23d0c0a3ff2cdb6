// `malaria train` as a user sees it: the model line it starts with (the parameter counts the README quotes).
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { modelLine } from '../../src/report/training-log.js';
import { TRAIN_DEFAULTS } from '../../src/config.js';
import { buildDataset } from '../../src/dataset/build.js';
import { csvLine, parseCsv } from '../../src/io/csv.js';
import { buildResNet } from '../../src/model/resnet.js';
import { expectOneErrorLine, runInProcess } from '../support/cli.js';
import { TINY_MODEL_FLAGS } from '../support/models.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, snapshotTree, splitOptions } from '../support/sample.js';

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

  it('says in --help that --lr falls as --schedule says, not that it always decays linearly', async () => {
    const help = (await runInProcess(['train', '--help'])).stdout.join('\n').replace(/\s+/g, ' ');
    const lr = /--lr <f> (.*?) \(default: 0\.1\)/.exec(help)?.[1];
    expect(lr).toMatch(/--schedule/);
    expect(lr).not.toMatch(/linearly/);
  });
});

describe('malaria train --positive', () => {
  // The sample with its classes renamed: two classes, neither of them Parasitized, the positive one sorted second.
  const sickData = () => path.join(dir, 'sick-data');
  beforeAll(async () => {
    const cells = path.join(dir, 'sick-cells');
    await copySample(cells, 12);
    await fsp.rename(path.join(cells, 'Parasitized'), path.join(cells, 'Sick'));
    await fsp.rename(path.join(cells, 'Uninfected'), path.join(cells, 'Healthy'));
    await buildDataset(splitOptions(cells, sickData()));
  });

  const train = (modelDir: string, ...flags: string[]) =>
    runInProcess([
      'train',
      '--data',
      sickData(),
      '--model-dir',
      modelDir,
      '--plot',
      path.join(dir, 'sick-plot.png'),
      '--epochs',
      '1',
      '--batch-size',
      '8',
      '--backend',
      'cpu',
      ...TINY_MODEL_FLAGS,
      ...flags,
    ]);

  it('refuses to guess the class to screen for, and a --positive that is not a class, before any work', async () => {
    const before = await snapshotTree(sickData());
    const modelDir = path.join(dir, 'sick-refused');
    const training = path.join(sickData(), 'training');
    const unnamed = await train(modelDir);
    expect(unnamed.code).toBe(2);
    expectOneErrorLine(
      unnamed,
      new RegExp(
        `^malaria: ${training} has the classes Healthy and Sick, neither of them Parasitized: name the class to screen for with --positive <class>$`,
      ),
    );
    const unknown = await train(modelDir, '--positive', 'Parasitized');
    expect(unknown.code).toBe(2);
    expectOneErrorLine(
      unknown,
      new RegExp(
        `^malaria: --positive Parasitized is not a class of ${training} \\(Healthy, Sick\\): pass one of them$`,
      ),
    );
    for (const refused of [unnamed, unknown])
      expect(refused.stdout.filter((line) => line.startsWith('model: '))).toEqual([]);
    expect(existsSync(modelDir)).toBe(false);
    expect(await snapshotTree(sickData())).toEqual(before);
  });

  it('with --positive Sick, saves it; evaluate and predict then screen for Sick without the flag', async () => {
    const modelDir = path.join(dir, 'sick-model');
    const trained = await train(modelDir, '--positive', 'Sick');
    expect(trained.code, trained.stderr.join('\n')).toBe(0);
    expect(trained.stdout).toContain('positive class: Sick, threshold P(Sick) >= 0.5');
    const metadata = JSON.parse(await fsp.readFile(path.join(modelDir, 'metadata.json'), 'utf8'));
    expect(metadata).toMatchObject({ classNames: ['Healthy', 'Sick'], positiveClass: 'Sick' });

    const evaluate = async (...flags: string[]) => {
      const result = await runInProcess([
        'evaluate',
        '--data',
        sickData(),
        '--model-dir',
        modelDir,
        '--json',
        ...flags,
      ]);
      expect(result.code, result.stderr.join('\n')).toBe(0);
      return JSON.parse(result.stdout[0]);
    };
    const atDefault = await evaluate('--backend', 'cpu');
    expect(atDefault.positive).toBe('Sick');
    expect(atDefault.sensitivity).toBe(atDefault.classes.Sick.recall);
    expect(atDefault.specificity).toBe(atDefault.classes.Healthy.recall);
    // At threshold 0 every cell is called positive: all Sick cells found, no Healthy cell cleared. Taking the first
    // class (Healthy) as positive would call every cell Healthy instead.
    const flagAll = await evaluate('--backend', 'cpu', '--threshold', '0');
    expect([flagAll.sensitivity, flagAll.specificity]).toEqual([1, 0]);
    expect([flagAll.classes.Sick.recall, flagAll.classes.Healthy.recall]).toEqual([1, 0]);

    const healthy = path.join(sickData(), 'testing', 'Healthy');
    const cells = (await fsp.readdir(healthy)).length;
    const predicted = await runInProcess([
      'predict',
      healthy,
      '--model-dir',
      modelDir,
      '--backend',
      'cpu',
      '--threshold',
      '0',
      '--json',
      '--summary',
    ]);
    expect(predicted.code, predicted.stderr.join('\n')).toBe(0);
    const labels = (JSON.parse(predicted.stdout[0]) as { label: string }[]).map((row) => row.label);
    expect(labels).toEqual(new Array(cells).fill('Sick'));
    expect(predicted.stderr).toContain(`slide summary: ${cells} cells, ${cells} Sick`);
  });
});

describe('malaria train --exclude', () => {
  const train = (modelDir: string, ...flags: string[]) =>
    runInProcess([
      'train',
      '--data',
      data(),
      '--model-dir',
      modelDir,
      '--plot',
      path.join(dir, 'exclude-plot.png'),
      '--epochs',
      '1',
      '--batch-size',
      '8',
      '--backend',
      'cpu',
      ...TINY_MODEL_FLAGS,
      ...flags,
    ]);

  /** splits.csv's rows as records (split, label, file, sha256, patient). */
  const splitRows = async () => {
    const [header, ...rows] = parseCsv(await fsp.readFile(path.join(data(), 'splits.csv'), 'utf8'));
    return rows.map((row) => Object.fromEntries(header.map((name, i) => [name, row[i]])));
  };
  /** A suspects.csv-like list (file, sha256) of `rows`. */
  const writeList = async (name: string, rows: Record<string, string>[]) => {
    const file = path.join(dir, name);
    await fsp.writeFile(file, csvLine(['file', 'sha256']) + rows.map((r) => csvLine([r.file, r.sha256])).join(''));
    return file;
  };
  const foundTraining = (stdout: string[]) =>
    Number(/^found (\d+) training/.exec(stdout.find((line) => line.startsWith('found ')) ?? '')?.[1]);

  it('trains without the listed files, leaves every file as it was, and records the list in metadata.json', async () => {
    const rows = await splitRows();
    const training = rows.filter((row) => row.split === 'training');
    const testing = rows.filter((row) => row.split === 'testing');
    const list = await writeList('exclude.csv', [...training.slice(0, 3), testing[0]]);
    const before = await snapshotTree(data());
    const modelDir = path.join(dir, 'excluded');
    const result = await train(modelDir, '--exclude', list);
    expect(result.code, result.stderr.join('\n')).toBe(0);
    expect(foundTraining(result.stdout)).toBe(training.length - 3);
    expect(result.stdout).toContain(
      `--exclude ${list}: left out 3 training images (validation and testing are not filtered)`,
    );
    // The testing file it lists: one warning line with the count, and testing keeps it.
    expect(result.stderr.filter((line) => line.startsWith('warning: '))).toEqual([
      `warning: --exclude ${list} lists 1 file not in the training split (in another split, or gone); nothing is done with them`,
    ]);
    expect(result.stdout).toContain(`evaluating on ${testing.length} testing images`);
    expect(await snapshotTree(data())).toEqual(before);
    const sha256 = createHash('sha256')
      .update(await fsp.readFile(list))
      .digest('hex');
    const metadata = JSON.parse(await fsp.readFile(path.join(modelDir, 'metadata.json'), 'utf8'));
    expect(metadata.excluded).toEqual({ sha256, count: 3 });

    // --resume continues with the same list only: another list, or none, would change the training set.
    const other = await writeList('other.csv', training.slice(0, 2));
    const refusals = [
      [['--exclude', other], /is not the list the interrupted run left out/],
      [[], new RegExp(`left out the training images listed in ${list} .*: resume with --exclude ${list}$`)],
    ] as const;
    for (const [flags, message] of refusals) {
      const refused = await train(modelDir, '--resume', ...flags);
      expect(refused.code).toBe(2);
      expectOneErrorLine(refused, message);
    }
    const resumed = await train(modelDir, '--resume', '--exclude', list);
    expect(resumed.code, resumed.stderr.join('\n')).toBe(0);
    expect(foundTraining(resumed.stdout)).toBe(training.length - 3);
    expect(JSON.parse(await fsp.readFile(path.join(modelDir, 'metadata.json'), 'utf8')).excluded).toEqual({
      sha256,
      count: 3,
    });
    expect(await snapshotTree(data())).toEqual(before);
  });

  it('a run without --exclude refuses one on --resume, and an unusable list is one line', async () => {
    const modelDir = path.join(dir, 'whole');
    expect((await train(modelDir)).code).toBe(0);
    const list = await writeList('late.csv', (await splitRows()).slice(0, 1));
    const late = await train(modelDir, '--resume', '--exclude', list);
    expect(late.code).toBe(2);
    expectOneErrorLine(late, /^malaria: the interrupted run trained on every training image: resume without --exclude/);

    const noColumns = path.join(dir, 'no-columns.csv');
    await fsp.writeFile(noColumns, 'name,label\na.png,Parasitized\n');
    const refused = await train(path.join(dir, 'never'), '--exclude', noColumns);
    expect(refused.code).toBe(2);
    expectOneErrorLine(refused, /has no "file" or "sha256" column/);
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });
});
