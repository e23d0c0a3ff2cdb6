import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../../src/tf.js';
import { UserError } from '../../src/errors.js';
import {
  APP_MARKER,
  APP_MARKER_TEXT,
  assertApart,
  checkOutputFolder,
  emptyOurFolder,
  existingSplitEntries,
} from '../../src/io/output-folder.js';
import { saveHistory, saveModel } from '../../src/model/io.js';
import { buildDataset, SPLIT_NAMES } from '../../src/data/build-dataset.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample } from '../support/sample.js';
import { tinyMetadata, tinyResNet } from '../support/models.js';

const SPLIT_ENTRIES = [...SPLIT_NAMES, 'splits.csv', 'rejected.csv'];
const history = { loss: [1], accuracy: [0.5], val_loss: [1], val_accuracy: [0.5], lr: [0.1] };

let dir: string;
/** A model folder as train leaves it (model, metadata, history), copied into each test that needs one. */
let savedModel: string;

beforeAll(async () => {
  await selectBackend('cpu');
  savedModel = await makeTempDir('malaria-saved-model-');
  const model = tinyResNet();
  await saveModel(savedModel, model, tinyMetadata());
  model.dispose();
  await saveHistory(savedModel, history);
});
afterAll(async () => removeDir(savedModel));
beforeEach(async () => {
  dir = await makeTempDir('malaria-output-');
});
afterEach(async () => removeDir(dir));

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  expect((err as UserError).exitCode).toBe(2);
  return (err as UserError).message;
}

describe('checkOutputFolder: model folders', () => {
  it('missing, empty and our own model folder are said so', async () => {
    expect(await checkOutputFolder(path.join(dir, 'none'), 'model', '--model-dir none')).toBe('missing');
    await fs.mkdir(path.join(dir, 'empty'));
    expect(await checkOutputFolder(path.join(dir, 'empty'), 'model', '--model-dir empty')).toBe('empty');
    expect(await checkOutputFolder(savedModel, 'model', '--model-dir m')).toBe('ours');
    // A run stopped before its first save: only a checkpoint and history, plus a killed write's temporary file.
    const partial = path.join(dir, 'partial');
    await fs.cp(savedModel, path.join(partial, 'checkpoint'), { recursive: true });
    await fs.rm(path.join(partial, 'checkpoint', 'metadata.json'));
    await fs.rm(path.join(partial, 'checkpoint', 'history.json'));
    await fs.writeFile(path.join(partial, '.weights.bin.malaria-tmp-999999999-0123abcd'), 'half');
    expect(await checkOutputFolder(partial, 'model', '--model-dir partial')).toBe('ours');
  });

  it('refuses, naming the folder and the first foreign entry, anything else', async () => {
    const cases: [string, (folder: string) => Promise<void>, RegExp][] = [
      ['images', (f) => copySample(f, 1).then(() => undefined), /Parasitized is not a file this tool writes/],
      [
        'model plus an image',
        async (f) => {
          await fs.cp(savedModel, f, { recursive: true });
          await fs.writeFile(path.join(f, 'cell.png'), 'x');
        },
        /cell\.png is not a file this tool writes/,
      ],
      [
        'a Keras conversion',
        async (f) => {
          await fs.mkdir(f);
          await fs.writeFile(path.join(f, 'model.json'), JSON.stringify({ modelTopology: {}, weightsManifest: [] }));
          await fs.writeFile(path.join(f, 'group1-shard1of1.bin'), 'w');
        },
        /group1-shard1of1\.bin is not a file this tool writes/,
      ],
      [
        'random JSON named like ours',
        async (f) => {
          await fs.mkdir(f);
          await fs.writeFile(path.join(f, 'metadata.json'), '{"patient": "A-12"}');
        },
        /metadata\.json is not our model metadata/,
      ],
      [
        'weights alone',
        async (f) => {
          await fs.mkdir(f);
          await fs.writeFile(path.join(f, 'weights.bin'), 'w');
        },
        /weights\.bin is not the weights of a model\.json beside it/,
      ],
      [
        'a checkpoint folder holding notes',
        async (f) => {
          await fs.mkdir(path.join(f, 'checkpoint'), { recursive: true });
          await fs.writeFile(path.join(f, 'checkpoint', 'notes.txt'), 'x');
        },
        /checkpoint\/notes\.txt is not a file this tool writes/,
      ],
    ];
    for (const [what, make, reason] of cases) {
      const folder = path.join(dir, what.replace(/ /g, '-'));
      await make(folder);
      const message = await refusal(checkOutputFolder(folder, 'model', `--model-dir ${folder}`));
      expect(message, what).toMatch(
        new RegExp(
          `^--model-dir ${folder} holds files that are not a model written by \`malaria train\` or \`malaria export\` \\(`,
        ),
      );
      expect(message, what).toMatch(reason);
      expect(message, what).toMatch(/nothing was changed: choose another folder, or move those files away yourself$/);
    }
    await fs.writeFile(path.join(dir, 'file'), 'x');
    expect(await refusal(checkOutputFolder(path.join(dir, 'file'), 'model', '--out file'))).toBe(
      '--out file is a file, not a folder; choose a folder',
    );
  });
});

describe('checkOutputFolder: app folders', () => {
  it('an app of ours (its marker and only its entries) is ours; a marker beside other files is not', async () => {
    const app = path.join(dir, 'app');
    await fs.mkdir(path.join(app, 'js'), { recursive: true });
    await fs.writeFile(path.join(app, APP_MARKER), APP_MARKER_TEXT);
    await fs.writeFile(path.join(app, 'index.html'), '<html>');
    expect(await checkOutputFolder(app, 'app', '--out app')).toBe('ours');
    await fs.writeFile(path.join(app, 'slide-7.png'), 'x');
    expect(await refusal(checkOutputFolder(app, 'app', '--out app'))).toMatch(/slide-7\.png is not part of the app/);
    await copySample(path.join(dir, 'cells'), 1);
    expect(await refusal(checkOutputFolder(path.join(dir, 'cells'), 'app', '--out cells'))).toMatch(
      /^--out cells holds files that are not a web app written by `malaria app` \(it has no \.malaria-app marker\)/,
    );
  });
});

describe('existingSplitEntries', () => {
  it('accepts a split build-dataset wrote, refuses one that holds other files or has no manifest of ours', async () => {
    const input = path.join(dir, 'cells');
    const output = path.join(dir, 'data');
    await copySample(input, 3);
    expect(await existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data')).toEqual([]);
    await buildDataset({ input, output, trainSplit: 0.8, valSplit: 0.1, seed: 1, force: false, groupBy: 'cell' });
    expect(await existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data')).toEqual([
      ...SPLIT_NAMES,
      'splits.csv',
    ]);

    // Someone's own image among the copies: the counts no longer match splits.csv.
    await fs.copyFile(
      path.join(input, 'Parasitized', (await fs.readdir(path.join(input, 'Parasitized')))[0]),
      path.join(output, 'testing', 'Parasitized', 'mine.png'),
    );
    expect(await refusal(existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data'))).toMatch(
      /^--output data holds files that are not a split written by `malaria build-dataset` \(testing\/Parasitized holds \d+ files where splits\.csv lists \d+\)/,
    );
    await fs.rm(path.join(output, 'testing', 'Parasitized', 'mine.png'));
    await fs.writeFile(path.join(output, 'splits.csv'), 'file,label\na.png,x\n');
    expect(await refusal(existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data'))).toMatch(
      /splits\.csv is not the manifest `malaria build-dataset` writes/,
    );
    await fs.rm(path.join(output, 'splits.csv'));
    expect(await refusal(existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data'))).toMatch(
      /it has training, validation, testing but no splits\.csv/,
    );
  });
});

describe('assertApart', () => {
  it('refuses an output that is, contains or lies inside an input, also through a symlink', async () => {
    const data = path.join(dir, 'data');
    await fs.mkdir(path.join(data, 'training'), { recursive: true });
    const input = [{ path: path.join(data, 'training'), label: 'the training split' }];
    await expect(
      assertApart([{ path: path.join(dir, 'model'), label: '--model-dir model' }], input),
    ).resolves.toBeUndefined();
    await expect(
      assertApart([{ path: path.join(dir, 'data-model'), label: '--model-dir data-model' }], input),
    ).resolves.toBeUndefined();
    expect(await refusal(assertApart([{ path: data, label: '--model-dir data' }], input))).toBe(
      '--model-dir data contains the training split, which this command reads and must not change; choose a separate folder',
    );
    expect(
      await refusal(assertApart([{ path: path.join(data, 'training', 'm'), label: '--model-dir m' }], input)),
    ).toMatch(/^--model-dir m lies inside the training split/);
    expect(await refusal(assertApart([{ path: path.join(data, 'training'), label: '--model-dir t' }], input))).toMatch(
      /^--model-dir t is the training split/,
    );
    await fs.symlink(data, path.join(dir, 'link'));
    expect(
      await refusal(
        assertApart([{ path: path.join(dir, 'link', 'training', 'new', 'deeper'), label: '--out x' }], input),
      ),
    ).toMatch(/^--out x lies inside/);
  });
});

describe('emptyOurFolder', () => {
  it('empties one of our folders, weights.bin first, so a kill after any removal leaves a folder still ours', async () => {
    const folder = path.join(dir, 'model');
    await fs.cp(savedModel, folder, { recursive: true });
    await fs.cp(savedModel, path.join(folder, 'checkpoint'), { recursive: true });
    await fs.rm(path.join(folder, 'checkpoint', 'metadata.json'));
    await fs.rm(path.join(folder, 'checkpoint', 'history.json'));
    const removed: string[] = [];
    const left: string[] = [];
    const rm = fs.rm.bind(fs);
    vi.spyOn(fs, 'rm').mockImplementation(async (file, options) => {
      await rm(file, options);
      removed.push(path.basename(String(file)));
      // Were the process killed here, the next run must still see one of our folders (or an empty one).
      left.push(await checkOutputFolder(folder, 'model', '--model-dir model').catch((err: Error) => err.message));
    });
    await emptyOurFolder(folder);
    vi.restoreAllMocks();
    expect(removed[0]).toBe('weights.bin');
    expect(left.slice(0, -1).every((state) => state === 'ours')).toBe(true);
    expect(left.at(-1)).toBe('empty');
  });
});
