// `malaria train --preset` in this process on a few sample cells: the preset recipe with flags overriding it, kept in
// the checkpoint for --resume, and the temperature fitted on validation after training.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../../src/data/build-dataset.js';
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
      'preset laptop: --epochs 10 --batch-size 32 --lr 0.1 --image-size 48 --stages 2,3,4 --filters 16,32,64,128; ' +
        'changed by flags: --epochs 1 --batch-size 8 --image-size 16 --filters 4,4,8,8',
    );
    // The preset's stages and learning rate, the flags' filters and size.
    expect(
      stdout.some(
        (line) => line.startsWith('model: ResNet stages 2,3,4 filters 4,4,8,8: ') && line.endsWith('16x16 input'),
      ),
    ).toBe(true);
    const { settings } = await loadCheckpointState(modelDir());
    expect(settings).toMatchObject({
      epochs: 1,
      initialLr: 0.1,
      architecture: { stages: [2, 3, 4], filters: [4, 4, 8, 8] },
    });
    expect(settings.run).toMatchObject({ preset: 'laptop', imageSize: 16, batchSize: 8 });

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
      'preset laptop: --epochs 10 --batch-size 32 --lr 0.1 --image-size 48 --stages 2,3,4 --filters 16,32,64,128; ' +
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
});
