// No flag deletes or changes a user's data: --force replaces only an empty folder or one of our own outputs, an
// output never overlaps an input, and an export killed between its two renames comes back on the next run. Each
// refusal is one line, exit code 2, and every file where it was, byte for byte.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/tf.js';
import { buildDataset } from '../../src/data/build-dataset.js';
import { sweepLeftovers } from '../../src/io/atomic.js';
import { expectOneErrorLine, HOLD_HOOK, runChild, runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, snapshotTree, splitOptions } from '../support/sample.js';
import { miniArchive } from '../support/zip.js';
import { saveBrightnessModel, TINY_MODEL_FLAGS } from '../support/models.js';

const HOLDING = 'test-hold: holding';

let dir: string;
/** The default layout: malaria/cell_images (the images), malaria/{training,validation,testing} and splits.csv. */
const base = () => path.join(dir, 'malaria');
const images = () => path.join(base(), 'cell_images');
const model = () => path.join(dir, 'model');

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-data-safety-');
  await copySample(images(), 6);
  await buildDataset(splitOptions(images(), base()));
  await saveBrightnessModel(model());
});
afterAll(async () => removeDir(dir));

/** Runs the command, expects exit 2 with one line matching `pattern`, and `folder` unchanged to the byte. */
async function expectRefusedUntouched(args: string[], folder: string, pattern: RegExp): Promise<void> {
  const before = await snapshotTree(folder);
  const result = await runInProcess(args);
  expect(result.code, [...result.stdout, ...result.stderr].join('\n')).toBe(2);
  expectOneErrorLine(result, pattern, args.join(' '));
  expect(await snapshotTree(folder)).toEqual(before);
}

const TINY_TRAIN = ['--epochs', '1', ...TINY_MODEL_FLAGS, '--batch-size', '8', '--backend', 'cpu'];

describe('--force replaces only what this tool made', () => {
  it('train --model-dir <the data folder> --force: refused, the data set untouched', async () => {
    await expectRefusedUntouched(
      ['train', '--data', base(), '--model-dir', base(), '--force', ...TINY_TRAIN],
      dir,
      /^malaria: --model-dir .*malaria contains the training split of --data .*malaria, which this command reads and must not change; choose a separate folder$/,
    );
  });

  it('train --model-dir <a folder of images> --force: refused, the images untouched', async () => {
    await expectRefusedUntouched(
      ['train', '--data', base(), '--model-dir', images(), '--force', ...TINY_TRAIN],
      dir,
      /^malaria: --model-dir .*cell_images holds files that are not a model written by `malaria train` or `malaria export` \(Parasitized is not a file this tool writes\); nothing was changed/,
    );
  });

  it('export --out <the testing split> --force: refused, the split untouched', async () => {
    await expectRefusedUntouched(
      ['export', '--model-dir', model(), '--out', path.join(base(), 'testing'), '--force', '--backend', 'cpu'],
      dir,
      /^malaria: --out .*testing holds files that are not a model written by `malaria train` or `malaria export` \(Parasitized is not a file this tool writes\)/,
    );
  });

  it('app --out <a folder with images>: refused, the images untouched', async () => {
    await expectRefusedUntouched(
      ['app', '--model-dir', model(), '--out', images()],
      dir,
      /^malaria: --out .*cell_images holds files that are not a web app written by `malaria app` \(it has no \.malaria-app marker\)/,
    );
  });

  it("build-dataset --force --output <a folder with someone's split>: refused, their files untouched", async () => {
    const theirs = path.join(dir, 'theirs');
    await copySample(path.join(theirs, 'training'), 2);
    await fsp.writeFile(path.join(theirs, 'README.txt'), 'our lab split, 2019');
    await expectRefusedUntouched(
      ['build-dataset', '--input', images(), '--output', theirs, '--force'],
      dir,
      /^malaria: --output .*theirs holds files that are not a split written by `malaria build-dataset` \(it has training but no splits\.csv\)/,
    );
  });

  it('download --force over a folder of images the archive does not have: refused, the images untouched', async () => {
    const downloads = path.join(dir, 'downloads');
    await fsp.mkdir(downloads);
    await fsp.writeFile(path.join(downloads, 'cell_images.zip'), (await miniArchive(1)).zip);
    await copySample(path.join(downloads, 'cell_images'), 2, 10);
    await expectRefusedUntouched(
      ['download', '--dir', downloads, '--force'],
      downloads,
      /^malaria: .*cell_images holds files that are not images extracted from .*cell_images\.zip \(Parasitized\/.* is not an image of cell_images\.zip\)/,
    );
  });
});

describe('outputs apart from inputs', () => {
  it('export and app refuse an --out inside the model folder; train a --plot inside a split', async () => {
    await expectRefusedUntouched(
      ['export', '--model-dir', model(), '--out', path.join(model(), 'uint8'), '--backend', 'cpu'],
      dir,
      /--out .*uint8 lies inside the model folder/,
    );
    await expectRefusedUntouched(
      ['app', '--model-dir', model(), '--out', path.join(model(), 'app')],
      dir,
      /--out .*app lies inside the model folder/,
    );
    await expectRefusedUntouched(
      [
        'train',
        '--data',
        base(),
        '--model-dir',
        path.join(dir, 'new-model'),
        '--plot',
        path.join(base(), 'testing', 'plot.png'),
        ...TINY_TRAIN,
      ],
      dir,
      /--plot .*plot\.png lies inside the testing split of --data/,
    );
  });

  it('build-dataset refuses an input inside a split folder it would replace, even through a symlink', async () => {
    await fsp.symlink(path.join(base(), 'training'), path.join(dir, 'training-link'));
    await expectRefusedUntouched(
      ['build-dataset', '--input', path.join(dir, 'training-link'), '--output', base(), '--force'],
      dir,
      /training \(written by this command\) is --input .*training-link/,
    );
    await fsp.rm(path.join(dir, 'training-link'));
  });
});

describe('export killed between its two renames', () => {
  it('the previous export is back on the next run, byte for byte, and nothing is left beside it', async () => {
    const out = path.join(dir, 'exported');
    expect(
      (
        await runInProcess([
          'export',
          '--model-dir',
          model(),
          '--out',
          out,
          '--quantize',
          'float16',
          '--backend',
          'cpu',
        ])
      ).code,
    ).toBe(0);
    const before = await snapshotTree(out);
    const killed = await runChild(
      ['export', '--model-dir', model(), '--out', out, '--quantize', 'uint8', '--force', '--backend', 'cpu'],
      {
        nodeArgs: HOLD_HOOK,
        env: { MALARIA_TEST_HOLD: 'renamed:exported' },
        onLine: (line, child) => void (line === HOLDING && child.kill('SIGKILL')),
      },
    );
    expect(killed.signal).toBe('SIGKILL');
    // The old export moved aside, the complete new one not yet in place.
    const leftovers = (await fsp.readdir(dir)).filter((name) => name.startsWith('.exported.'));
    expect(leftovers.map((name) => name.replace(/\d+-[0-9a-f]{8}$/, ''))).toEqual([
      '.exported.malaria-old-',
      '.exported.malaria-tmp-',
    ]);
    expect((await fsp.readdir(dir)).includes('exported')).toBe(false);

    // The next export there (here one that then refuses to replace it without --force) puts it back first.
    const next = await runInProcess(['export', '--model-dir', model(), '--out', out, '--backend', 'cpu']);
    expect(next.code).toBe(2);
    expectOneErrorLine(next, /already holds a model; pass --force/);
    expect(await snapshotTree(out)).toEqual(before);
    expect((await fsp.readdir(dir)).filter((name) => name.startsWith('.exported.'))).toEqual([]);
  });
});

describe('app killed between its two renames', () => {
  it('leaves the previous app whole under its old name, which the sweep every app run starts with puts back', async () => {
    const out = path.join(dir, 'field-app');
    expect((await runInProcess(['app', '--model-dir', model(), '--out', out])).code).toBe(0);
    const before = await snapshotTree(out);
    const killed = await runChild(['app', '--model-dir', model(), '--out', out], {
      nodeArgs: HOLD_HOOK,
      env: { MALARIA_TEST_HOLD: 'renamed:field-app' },
      onLine: (line, child) => void (line === HOLDING && child.kill('SIGKILL')),
    });
    expect(killed.signal).toBe('SIGKILL');
    expect((await fsp.readdir(dir)).includes('field-app')).toBe(false);
    expect(await sweepLeftovers(dir, ['field-app'])).toMatchObject({
      restored: [expect.stringMatching(/^\.field-app\.malaria-old-\d+-[0-9a-f]{8} -> field-app$/)],
    });
    expect(await snapshotTree(out)).toEqual(before);
    expect((await fsp.readdir(dir)).filter((name) => name.startsWith('.field-app.'))).toEqual([]);
  });
});
