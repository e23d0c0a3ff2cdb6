// No flag deletes or changes a user's data: --force replaces only an empty folder or one of our own outputs, an
// output never overlaps an input, and an export killed between its two renames comes back on the next run. Each
// refusal is one line, exit code 2, and every file where it was, byte for byte.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { buildDataset } from '../../src/dataset/build.js';
import { sweepLeftovers } from '../../src/io/atomic.js';
import { expectOneErrorLine, HOLD_HOOK, runChild, runInProcess } from '../support/cli.js';
import { DEAD_PID, makeTempDir, removeDir } from '../support/temp.js';
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
    // The old export moved aside, the complete new one not yet in place, and the killed run's lock.
    const leftovers = (await fsp.readdir(dir)).filter((name) => name.startsWith('.exported.'));
    expect(leftovers.map((name) => name.replace(/\d+-[0-9a-f]{8}$/, '')).sort()).toEqual([
      '.exported.malaria-lock',
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
    // Only the killed run's lock is left; the next run takes it over (its process is gone) and removes it.
    expect((await fsp.readdir(dir)).filter((name) => name.startsWith('.field-app.'))).toEqual([
      '.field-app.malaria-lock',
    ]);
    expect((await runInProcess(['app', '--model-dir', model(), '--out', out])).code).toBe(0);
    expect((await fsp.readdir(dir)).filter((name) => name.startsWith('.field-app.'))).toEqual([]);
  });
});

describe('single-file outputs: replaced only when this tool wrote them, or with --force', () => {
  const files = () => path.join(dir, 'single-files');
  // Enough cells for the validation split a run needs (the shared set is too small to train on).
  const trainable = () => path.join(files(), 'data');
  beforeAll(async () => {
    await copySample(path.join(files(), 'cell_images'), 12);
    await buildDataset(splitOptions(path.join(files(), 'cell_images'), trainable()));
  });
  const evaluate = (...flags: string[]) => [
    'evaluate',
    '--data',
    base(),
    '--model-dir',
    model(),
    '--backend',
    'cpu',
    ...flags,
  ];
  /** A file of the user's (not a PNG) at `name` under files(); returns its path. */
  async function theirFile(name: string): Promise<string> {
    await fsp.mkdir(files(), { recursive: true });
    const file = path.join(files(), name);
    await fsp.writeFile(file, '# Field notes\n\nSlide 14: stain too dark, recount.\n');
    return file;
  }

  it('evaluate --roc README.md: refused, README.md unchanged byte for byte', async () => {
    const readme = await theirFile('README.md');
    await expectRefusedUntouched(
      evaluate('--roc', readme),
      dir,
      /^malaria: --roc .*README\.md is not a file this tool wrote \(it is not a PNG\); nothing was changed: choose another file, or pass --force to replace it$/,
    );
  });

  it('evaluate --errors inside the split it evaluates: refused, the split untouched', async () => {
    await expectRefusedUntouched(
      evaluate('--errors', path.join(base(), 'testing', 'Parasitized', 'errors.png')),
      dir,
      /^malaria: --errors .*errors\.png lies inside the testing split of --data .*malaria, which this command reads and must not change; choose a separate folder$/,
    );
  });

  it('train --plot onto a file this tool did not write: refused before training starts; --force replaces it', async () => {
    const notes = await theirFile('notes.txt');
    const train = (modelDir: string, ...flags: string[]) => [
      'train',
      '--data',
      trainable(),
      '--model-dir',
      path.join(files(), modelDir),
      '--plot',
      notes,
      ...TINY_TRAIN,
      ...flags,
    ];
    // Nothing in `dir` changes: no model folder, no checkpoint, so not one epoch ran.
    await expectRefusedUntouched(
      train('model'),
      dir,
      /^malaria: --plot .*notes\.txt is not a file this tool wrote \(it is not a PNG\); nothing was changed: choose another file, or pass --force to replace it$/,
    );
    const forced = await runInProcess(train('model', '--force'));
    expect(forced.code, forced.stderr.join('\n')).toBe(0);
    expect((await sharp(notes).metadata()).format).toBe('png');
    // Now it is a plot of ours: the next run replaces it without --force.
    const before = await fsp.readFile(notes);
    const again = await runInProcess(train('model-2', '--epochs', '2'));
    expect(again.code, again.stderr.join('\n')).toBe(0);
    expect(await fsp.readFile(notes)).not.toEqual(before);
  });

  it('train --plot inside --model-dir: refused, so the model folder stays one of ours', async () => {
    const modelDir = path.join(files(), 'model-with-plot');
    await expectRefusedUntouched(
      [
        'train',
        '--data',
        trainable(),
        '--model-dir',
        modelDir,
        '--plot',
        path.join(modelDir, 'plot.png'),
        ...TINY_TRAIN,
      ],
      dir,
      /^malaria: --plot .*plot\.png lies inside --model-dir .*model-with-plot, which holds the model and nothing else; choose a path outside it$/,
    );
  });
});

describe('leftover sweeps: only names of this version, and only once the output is found ours', () => {
  const sweeps = () => path.join(dir, 'sweeps');
  /** A folder of the user's named like an earlier version's leftover (`.app-2024-old`), holding an image. */
  async function theirLookalike(parent: string, name: string): Promise<string> {
    const folder = path.join(parent, name);
    await copySample(folder, { Parasitized: 1 });
    return folder;
  }
  /** A leftover of this version's scheme, of a run that is gone. */
  async function deadLeftover(parent: string, base: string): Promise<void> {
    const folder = path.join(parent, `.${base}.malaria-tmp-${DEAD_PID}-0123abcd`);
    await fsp.mkdir(folder, { recursive: true });
    await fsp.writeFile(path.join(folder, 'half-written'), 'x');
  }

  it('app, export, download, build-dataset: a folder of theirs named like an old leftover stays as it was', async () => {
    const cases: [what: string, lookalikes: string[], args: (parent: string) => string[], output: string][] = [
      ['app', ['.app-2024-old'], (p) => ['app', '--model-dir', model(), '--out', path.join(p, 'app')], 'app'],
      [
        'export',
        ['.exported-2024-old'],
        (p) => ['export', '--model-dir', model(), '--out', path.join(p, 'exported'), '--backend', 'cpu'],
        'exported',
      ],
      ['download', ['.cell_images-2024-old'], (p) => ['download', '--dir', p], 'cell_images'],
      [
        'build-dataset',
        ['split/.build-dataset-2024-tmp', 'split/.split-2024-tmp'],
        (p) => ['build-dataset', '--input', images(), '--output', path.join(p, 'split')],
        'split/splits.csv',
      ],
    ];
    for (const [what, lookalikes, args, output] of cases) {
      const parent = path.join(sweeps(), what);
      await fsp.mkdir(parent, { recursive: true });
      if (what === 'download') await fsp.writeFile(path.join(parent, 'cell_images.zip'), (await miniArchive(1)).zip);
      const theirs = await Promise.all(lookalikes.map((name) => theirLookalike(parent, name)));
      const before = await Promise.all(theirs.map((folder) => snapshotTree(folder)));
      const result = await runInProcess(args(parent));
      expect(result.code, `${what}: ${result.stderr.join('\n')}`).toBe(0);
      expect(await Promise.all(theirs.map((folder) => snapshotTree(folder))), what).toEqual(before);
      expect(await fsp.stat(path.join(parent, output)).then(() => true), what).toBe(true);
    }
  });

  it('train --force: a backup of theirs named like an old leftover makes the model folder not ours; it stays', async () => {
    const modelDir = path.join(sweeps(), 'train-model');
    await fsp.cp(model(), modelDir, { recursive: true });
    await fsp.copyFile(path.join(modelDir, 'weights.bin'), path.join(modelDir, '.weights.bin-2024-old'));
    await expectRefusedUntouched(
      ['train', '--data', base(), '--model-dir', modelDir, '--force', ...TINY_TRAIN],
      modelDir,
      /^malaria: --model-dir .*train-model holds files that are not a model .* \(\.weights\.bin-2024-old is not a file this tool writes\); nothing was changed/,
    );
  });

  it('a refused command removes not even leftovers of our own killed runs', async () => {
    const refused = path.join(sweeps(), 'refused');
    await copySample(path.join(refused, 'theirs-app'), 1);
    await deadLeftover(refused, 'theirs-app');
    await expectRefusedUntouched(
      ['app', '--model-dir', model(), '--out', path.join(refused, 'theirs-app')],
      refused,
      /--out .*theirs-app holds files that are not a web app written by `malaria app` \(it has no \.malaria-app marker\)/,
    );
    await copySample(path.join(refused, 'theirs-export'), 1);
    await deadLeftover(refused, 'theirs-export');
    await expectRefusedUntouched(
      ['export', '--model-dir', model(), '--out', path.join(refused, 'theirs-export'), '--force', '--backend', 'cpu'],
      refused,
      /--out .*theirs-export holds files that are not a model .*\(Parasitized is not a file this tool writes\)/,
    );
    await copySample(path.join(refused, 'theirs-model'), 1);
    await deadLeftover(path.join(refused, 'theirs-model'), 'weights.bin');
    await expectRefusedUntouched(
      ['train', '--data', base(), '--model-dir', path.join(refused, 'theirs-model'), '--force', ...TINY_TRAIN],
      refused,
      /--model-dir .*theirs-model holds files that are not a model .*\(Parasitized is not a file this tool writes\)/,
    );
    const downloads = path.join(refused, 'downloads');
    await fsp.mkdir(downloads);
    await fsp.writeFile(path.join(downloads, 'cell_images.zip'), (await miniArchive(1)).zip);
    await copySample(path.join(downloads, 'cell_images'), 2, 10);
    await deadLeftover(downloads, 'cell_images');
    await expectRefusedUntouched(
      ['download', '--dir', downloads, '--force'],
      refused,
      /cell_images holds files that are not images extracted from .*cell_images\.zip/,
    );
    await copySample(path.join(refused, 'theirs-split', 'training'), 1);
    await deadLeftover(path.join(refused, 'theirs-split'), 'split');
    await expectRefusedUntouched(
      ['build-dataset', '--input', images(), '--output', path.join(refused, 'theirs-split'), '--force'],
      refused,
      /--output .*theirs-split holds files that are not a split .*\(it has training but no splits\.csv\)/,
    );
  });

  it("export --force and train --force refuse a folder of only model.json and weights.bin (any TensorFlow.js program's model.save)", async () => {
    const tfjs = path.join(sweeps(), 'tfjs-model');
    await fsp.mkdir(tfjs, { recursive: true });
    for (const name of ['model.json', 'weights.bin'])
      await fsp.copyFile(path.join(model(), name), path.join(tfjs, name));
    const reason = /\(it has no metadata\.json of ours and no checkpoint with our state\.json\); nothing was changed/;
    await expectRefusedUntouched(
      ['export', '--model-dir', model(), '--out', tfjs, '--force', '--backend', 'cpu'],
      tfjs,
      reason,
    );
    await expectRefusedUntouched(
      ['train', '--data', base(), '--model-dir', tfjs, '--force', ...TINY_TRAIN],
      tfjs,
      reason,
    );
  });
});
