// `malaria train --preset` in this process on a few sample cells: the preset recipe with flags overriding it, kept in
// the checkpoint for --resume, and the temperature fitted on validation after training.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../../src/dataset/build.js';
import { loadCheckpointState } from '../../src/model/checkpoint.js';
import { runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, splitOptions } from '../support/sample.js';

let dir: string;
const data = () => path.join(dir, 'data');
const modelDir = () => path.join(dir, 'model');

beforeAll(async () => {
  dir = await makeTempDir('malaria-train-');
  await copySample(path.join(dir, 'cells'), 16);
  await buildDataset(splitOptions(path.join(dir, 'cells'), data(), { trainSplit: 0.75, valSplit: 0.25 }));
});

afterAll(async () => removeDir(dir));

describe('malaria train --preset', () => {
  it('follows the preset where no flag is given, prints it, stores it in the checkpoint, and fits the temperature', async () => {
    const tiny = ['--epochs', '1', '--batch-size', '8', '--image-size', '16', '--filters', '4,4,8,8'];
    const args = [
      'train',
      '--data',
      data(),
      '--model-dir',
      modelDir(),
      '--plot',
      path.join(dir, 'plot.png'),
      '--backend',
      'cpu',
      '--preset',
      'laptop',
      ...tiny,
    ];
    const { code, stdout, stderr } = await runInProcess(args);
    expect(code, stderr.join('\n')).toBe(0);
    expect(stdout).toContain(
      'preset laptop: --epochs 11 --batch-size 32 --lr 0.1 --image-size 48 --resize nearest --stain keep --stages 2,3,4 --filters 16,32,64,128 ' +
        '--schedule linear --warmup 0 --label-smoothing 0.1 --l2 0.0001 --ema 0 --rotation 180 --color 0.1; ' +
        'changed by flags: --epochs 1 --batch-size 8 --image-size 16 --filters 4,4,8,8',
    );
    // The preset's stages and learning rate, the flags' filters and size.
    expect(
      stdout.some(
        (line) => line.startsWith('model: ResNet stages 2,3,4 filters 4,4,8,8: ') && line.endsWith('16x16 input'),
      ),
    ).toBe(true);
    const { recipe } = await loadCheckpointState(modelDir());
    expect(recipe).toMatchObject({ epochs: 1, lr: 0.1, stages: [2, 3, 4], filters: [4, 4, 8, 8], l2: 1e-4 });
    expect(recipe).toMatchObject({ preset: 'laptop', imageSize: 16, batchSize: 8 });

    // The temperature line says whether T was saved; metadata.json agrees.
    const metadata = JSON.parse(await fs.readFile(path.join(modelDir(), 'metadata.json'), 'utf8'));
    const line = stdout.find((l) => l.startsWith('temperature'));
    expect(line).toMatch(/^temperature(: the fit on validation| T = [\d.]+ fitted on validation) \(\d+ images\)/);
    if (line?.startsWith('temperature T = ')) expect(line).toContain(`T = ${metadata.temperature} fitted`);
    else expect(metadata).not.toHaveProperty('temperature');
    expect(stdout.some((l) => /^calibration: ECE 0\.\d{4} \(15 bins/.test(l))).toBe(true);
  });

  it("--resume keeps the checkpoint's preset and refuses another one; an unknown preset is one line", async () => {
    // The run above completed, so a resume has no epoch left; it still rebuilds the run from the checkpoint.
    const resumed = await runInProcess([
      'train',
      '--model-dir',
      modelDir(),
      '--resume',
      '--backend',
      'cpu',
      '--plot',
      path.join(dir, 'plot2.png'),
    ]);
    expect(resumed.code, resumed.stderr.join('\n')).toBe(0);
    expect(resumed.stdout).toContain(
      'preset laptop: --epochs 11 --batch-size 32 --lr 0.1 --image-size 48 --resize nearest --stain keep --stages 2,3,4 --filters 16,32,64,128 ' +
        '--schedule linear --warmup 0 --label-smoothing 0.1 --l2 0.0001 --ema 0 --rotation 180 --color 0.1; ' +
        'changed by flags: --epochs 1 --batch-size 8 --image-size 16 --filters 4,4,8,8',
    );
    const other = await runInProcess(['train', '--model-dir', modelDir(), '--resume', '--preset', 'tutorial']);
    expect(other.code).toBe(2);
    expect(other.stderr.filter((l) => l.startsWith('malaria:'))).toEqual([
      "malaria: --preset tutorial differs from the interrupted run's laptop: resume with the same flags, or leave --preset out",
    ]);
    const unknown = await runInProcess([
      'train',
      '--data',
      data(),
      '--model-dir',
      path.join(dir, 'other'),
      '--preset',
      'gpu',
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.join('\n')).toMatch(/--preset.*'gpu' is invalid\. Allowed choices are tutorial, laptop/);
  });

  it('--schedule, --warmup, --label-smoothing, --l2 and --ema are part of the recipe: printed, checkpointed, kept by --resume', async () => {
    const dirOf = path.join(dir, 'extras');
    const args = [
      'train',
      '--data',
      data(),
      '--model-dir',
      dirOf,
      '--plot',
      path.join(dir, 'extras.png'),
      '--backend',
      'cpu',
      ...['--epochs', '2', '--batch-size', '8', '--image-size', '16', '--stages', '1,1,1', '--filters', '4,4,8,8'],
      ...[
        '--schedule',
        'cosine',
        '--warmup',
        '0.5',
        '--label-smoothing',
        '0.1',
        '--l2',
        '0.001',
        '--ema',
        '0.9',
        '--rotation',
        '180',
        '--color',
        '0.2',
        '--resize',
        'area',
        '--stain',
        'balance',
      ],
    ];
    const { code, stdout, stderr } = await runInProcess(args);
    expect(code, stderr.join('\n')).toBe(0);
    expect(stdout.find((l) => l.startsWith('preset tutorial:'))).toMatch(
      /changed by flags: --epochs 2 --batch-size 8 --image-size 16 --resize area --stain balance .*--schedule cosine --warmup 0\.5 --label-smoothing 0\.1 --l2 0\.001 --ema 0\.9 --rotation 180 --color 0\.2$/,
    );
    expect(stdout.filter((l) => l.includes('(average of the weights; the weights themselves: '))).toHaveLength(2);
    const { recipe } = await loadCheckpointState(dirOf);
    expect(recipe).toMatchObject({
      schedule: 'cosine',
      warmup: 0.5,
      labelSmoothing: 0.1,
      ema: 0.9,
      resize: 'area',
      stain: 'balance',
      l2: 0.001,
    });
    expect(JSON.parse(await fs.readFile(path.join(dirOf, 'metadata.json'), 'utf8'))).toMatchObject({
      resize: 'area',
      stain: 'balance',
    });
    expect(recipe).toMatchObject({ rotation: 180, color: 0.2 });

    const changed = await runInProcess(['train', '--model-dir', dirOf, '--resume', '--ema', '0.5']);
    expect(changed.code).toBe(2);
    expect(changed.stderr.filter((l) => l.startsWith('malaria:'))).toEqual([
      "malaria: --ema 0.5 differs from the interrupted run's 0.9: resume with the same flags, or leave --ema out",
    ]);
    const otherPenalty = await runInProcess(['train', '--model-dir', dirOf, '--resume', '--l2', '0.0005']);
    expect(otherPenalty.code).toBe(2);
    expect(otherPenalty.stderr.filter((l) => l.startsWith('malaria:'))).toEqual([
      "malaria: --l2 0.0005 differs from the interrupted run's 0.001: resume with the same flags, or leave --l2 out",
    ]);
  });

  it('refuses a warm-up as long as the run, a decay of 1 and smoothing of 1, each in one line', async () => {
    for (const [flags, message] of [
      [['--epochs', '2', '--warmup', '2'], '--warmup 2 leaves no epoch to train at the full rate'],
      [['--ema', '1'], '--ema must be 0 (off) or a decay between 0 and 1'],
      [['--label-smoothing', '1'], '--label-smoothing must be at least 0 and below 1'],
      [['--rotation', '270'], '--rotation must be between 0 and 180 degrees'],
      [['--color', '1'], '--color must be at least 0 and below 1'],
      [['--l2', '0.5'], '--l2 must be below 0.1'],
      [['--schedule', 'step'], "'step' is invalid"],
      [['--resize', 'bicubic'], "'bicubic' is invalid. Allowed choices are nearest, area"],
      [['--stain', 'grey'], "'grey' is invalid. Allowed choices are keep, balance"],
    ] as const) {
      const run = await runInProcess(['train', '--data', data(), '--model-dir', path.join(dir, 'bad'), ...flags]);
      expect(run.code).toBe(2);
      const errors = run.stderr.filter((l) => l.includes(message));
      expect(errors, run.stderr.join('\n')).toHaveLength(1);
    }
  });
});
