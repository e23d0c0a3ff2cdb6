import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { UserError } from '../../src/errors.js';
import {
  APP_MARKER,
  APP_MARKER_TEXT,
  appMarkerText,
  assertApart,
  checkOutputFolder,
  emptyOurFolder,
  existingSplitEntries,
} from '../../src/io/output-folder.js';
import { saveHistory, saveModel } from '../../src/model/io.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { buildDataset, SPLIT_NAMES } from '../../src/dataset/build.js';
import { DEAD_PID, makeTempDir, removeDir } from '../support/temp.js';
import { copySample, snapshotTree } from '../support/sample.js';
import { tinyMetadata, tinyResNet, tinyRecipe, trainedModel } from '../support/models.js';

const SPLIT_ENTRIES = [...SPLIT_NAMES, 'splits.csv', 'rejected.csv'];
const history = { loss: [1], accuracy: [0.5], val_loss: [1], val_accuracy: [0.5], lr: [0.1] };

let dir: string;
/** A model folder as train leaves it (model, metadata, history), copied into each test that needs one. */
let savedModel: string;
/** A model folder as a first run stopped after its first epoch leaves it: checkpoint/ and history.json. */
let stoppedRun: string;

beforeAll(async () => {
  await selectBackend('cpu');
  savedModel = await makeTempDir('malaria-saved-model-');
  const model = tinyResNet();
  await saveModel(savedModel, model, tinyMetadata());
  model.dispose();
  await saveHistory(savedModel, history);
  stoppedRun = await makeTempDir('malaria-stopped-run-');
  const trained = await trainedModel(4);
  await saveCheckpoint(stoppedRun, { ...trained, epochsCompleted: 1, history, recipe: tinyRecipe() });
  await saveHistory(stoppedRun, history);
  trained.model.dispose();
  trained.optimizer.dispose();
});
afterAll(async () => {
  await removeDir(savedModel);
  await removeDir(stoppedRun);
});
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

describe('checkOutputFolder: what says a model folder is ours', () => {
  it("model.json and weights.bin, which any TensorFlow.js program's model.save writes, are not ours without our metadata.json", async () => {
    const tfjs = path.join(dir, 'tfjs');
    await fs.mkdir(tfjs);
    for (const name of ['model.json', 'weights.bin'])
      await fs.copyFile(path.join(savedModel, name), path.join(tfjs, name));
    const reason = /\(it has no metadata\.json of ours and no checkpoint with our state\.json\); nothing was changed/;
    expect(await refusal(checkOutputFolder(tfjs, 'model', '--out tfjs'))).toMatch(reason);
    // Keras' History has our history's keys: no evidence either.
    await fs.copyFile(path.join(savedModel, 'history.json'), path.join(tfjs, 'history.json'));
    expect(await refusal(checkOutputFolder(tfjs, 'model', '--out tfjs'))).toMatch(reason);
    // A checkpoint folder without its state.json (never what train leaves) is not evidence.
    await fs.mkdir(path.join(tfjs, 'checkpoint'));
    await fs.copyFile(path.join(savedModel, 'model.json'), path.join(tfjs, 'checkpoint', 'model.json'));
    expect(await refusal(checkOutputFolder(tfjs, 'model', '--out tfjs'))).toMatch(reason);
    // Our metadata.json beside them is.
    await fs.copyFile(path.join(savedModel, 'metadata.json'), path.join(tfjs, 'metadata.json'));
    expect(await checkOutputFolder(tfjs, 'model', '--out tfjs')).toBe('ours');
  });

  it('a first run stopped before the model was saved (checkpoint/ with our state.json, history.json) is ours', async () => {
    expect((await fs.readdir(stoppedRun)).sort()).toEqual(['checkpoint', 'history.json']);
    expect(await checkOutputFolder(stoppedRun, 'model', '--model-dir m')).toBe('ours');
    // Killed while writing its very first checkpoint: only our temporary folder.
    const first = path.join(dir, 'first');
    await fs.mkdir(path.join(first, `.checkpoint.malaria-tmp-${DEAD_PID}-0123abcd`), { recursive: true });
    expect(await checkOutputFolder(first, 'model', '--model-dir first')).toBe('ours');
    // A state.json that is not ours makes the checkpoint not ours.
    const forged = path.join(dir, 'forged');
    await fs.cp(stoppedRun, forged, { recursive: true });
    await fs.writeFile(path.join(forged, 'checkpoint', 'state.json'), '{"epoch": 3}');
    expect(await refusal(checkOutputFolder(forged, 'model', '--model-dir forged'))).toMatch(
      /\(checkpoint\/state\.json is not our checkpoint state\)/,
    );
  });

  it("names of an earlier version's temporary files, or ours for a file a model folder never holds, are not ours", async () => {
    for (const name of [`.weights.bin.tmp-${DEAD_PID}-0a1b2c3d`, `.notes.txt.malaria-tmp-${DEAD_PID}-0a1b2c3d`]) {
      const folder = path.join(dir, `with${name}`);
      await fs.cp(savedModel, folder, { recursive: true });
      await fs.writeFile(path.join(folder, name), 'x');
      expect(await refusal(checkOutputFolder(folder, 'model', '--model-dir m')), name).toMatch(
        `(${name} is not a file this tool writes)`,
      );
    }
  });
});

describe('checkOutputFolder: app folders', () => {
  it('an app of ours (its marker and only its entries) is ours; a marker beside other files is not', async () => {
    const app = path.join(dir, 'app');
    await fs.mkdir(path.join(app, 'js'), { recursive: true });
    await fs.writeFile(path.join(app, APP_MARKER), appMarkerText({ 'index.html': 6, 'js/main.js': 2 }));
    await fs.writeFile(path.join(app, 'index.html'), '<html>');
    await fs.writeFile(path.join(app, 'js', 'main.js'), '//');
    expect(await checkOutputFolder(app, 'app', '--out app')).toBe('ours');
    await fs.writeFile(path.join(app, 'slide-7.png'), 'x');
    expect(await refusal(checkOutputFolder(app, 'app', '--out app'))).toMatch(/slide-7\.png is not part of the app/);
    await copySample(path.join(dir, 'cells'), 1);
    expect(await refusal(checkOutputFolder(path.join(dir, 'cells'), 'app', '--out cells'))).toMatch(
      /^--out cells holds files that are not a web app written by `malaria app` \(it has no \.malaria-app marker\)/,
    );
  });
});

describe('checkOutputFolder: an app is checked at every depth', () => {
  async function writeOurApp(app: string): Promise<void> {
    const files: Record<string, string> = {
      'index.html': '<html>',
      'sw.js': 'const FILES = ["./","index.html","js/main.js","model/model.json"];',
      'js/main.js': '//',
      'model/model.json': '{}',
    };
    for (const [name, content] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(app, name)), { recursive: true });
      await fs.writeFile(path.join(app, name), content);
    }
    const sizes = Object.fromEntries(
      Object.entries(files).map(([name, content]) => [name, Buffer.byteLength(content)]),
    );
    await fs.writeFile(path.join(app, APP_MARKER), appMarkerText(sizes));
  }

  it('a file added inside js/ or model/, a folder of their own, or a file swapped for another: not ours', async () => {
    const cases: [string, (app: string) => Promise<void>, RegExp][] = [
      [
        'slide in js',
        (app) => fs.writeFile(path.join(app, 'js', 'slide-7.png'), 'x'),
        /\(js\/slide-7\.png is not part of the app\)/,
      ],
      [
        'notes in model',
        (app) => fs.writeFile(path.join(app, 'model', 'notes.txt'), 'x'),
        /\(model\/notes\.txt is not part of the app\)/,
      ],
      [
        'a folder of photos',
        (app) => fs.mkdir(path.join(app, 'js', 'photos')),
        /\(js\/photos is not part of the app\)/,
      ],
      [
        'their own index.html',
        (app) => fs.writeFile(path.join(app, 'index.html'), '<html>my own page</html>'),
        /\(index\.html is not the file `malaria app` wrote \(24 bytes, it wrote 6\)\)/,
      ],
    ];
    for (const [what, change, reason] of cases) {
      const app = path.join(dir, what.replace(/ /g, '-'));
      await writeOurApp(app);
      expect(await checkOutputFolder(app, 'app', '--out app'), what).toBe('ours');
      await change(app);
      expect(await refusal(checkOutputFolder(app, 'app', '--out app')), what).toMatch(reason);
    }
  });

  it("an earlier version's marker, which lists no files, is checked against the files its sw.js caches", async () => {
    const app = path.join(dir, 'earlier');
    await writeOurApp(app);
    await fs.writeFile(path.join(app, APP_MARKER), APP_MARKER_TEXT);
    expect(await checkOutputFolder(app, 'app', '--out app')).toBe('ours');
    await fs.writeFile(path.join(app, 'model', 'group1-shard1of1.bin'), 'x');
    expect(await refusal(checkOutputFolder(app, 'app', '--out app'))).toMatch(
      /\(model\/group1-shard1of1\.bin is not part of the app\)/,
    );
    await fs.rm(path.join(app, 'sw.js'));
    expect(await refusal(checkOutputFolder(app, 'app', '--out app'))).toMatch(
      /\(\.malaria-app lists no files and sw\.js does not either\)/,
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

describe('existingSplitEntries: names and sizes', () => {
  const build = async (output: string) => {
    const input = path.join(dir, 'cells');
    await copySample(input, 3);
    await buildDataset({ input, output, trainSplit: 0.8, valSplit: 0.1, seed: 1, force: false, groupBy: 'cell' });
  };
  const firstCopy = async (output: string, split = 'training', label = 'Parasitized') => {
    const folder = path.join(output, split, label);
    return path.join(folder, (await fs.readdir(folder)).sort()[0]);
  };

  it('an image swapped for another of the same name, or renamed, is not a copy splits.csv lists', async () => {
    const output = path.join(dir, 'data');
    await build(output);
    const copy = await firstCopy(output);
    const original = await fs.readFile(copy);
    // The same name, other bytes (another cell of the sample, of another size).
    const other = (await fs.readdir(path.join(dir, 'cells', 'Uninfected'))).sort()[0];
    await fs.copyFile(path.join(dir, 'cells', 'Uninfected', other), copy);
    expect((await fs.stat(copy)).size).not.toBe(original.length);
    expect(await refusal(existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data'))).toMatch(
      new RegExp(
        `\\(training/Parasitized/${path.basename(copy).replace(/\./g, '\\.')} is \\d+ bytes where splits\\.csv records ${original.length}\\)`,
      ),
    );
    await fs.writeFile(copy, original);
    expect(await existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data')).toHaveLength(4);
    // The same count, one of them under a name of someone's choosing.
    await fs.rename(copy, path.join(path.dirname(copy), 'renamed.png'));
    expect(await refusal(existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data'))).toMatch(
      /\(training\/Parasitized\/renamed\.png is not a file splits\.csv lists\)/,
    );
  });

  it('a split of an earlier version (splits.csv without sizes) is checked by name and sha256', async () => {
    const output = path.join(dir, 'data');
    await build(output);
    const manifest = path.join(output, 'splits.csv');
    const rows = (await fs.readFile(manifest, 'utf8')).trimEnd().split('\n');
    expect(rows[0]).toBe('split,label,file,sha256,patient,bytes');
    await fs.writeFile(manifest, `${rows.map((row) => row.replace(/,[^,]*$/, '')).join('\n')}\n`);
    expect(await existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data')).toHaveLength(4);
    const copy = await firstCopy(output);
    const bytes = await fs.readFile(copy);
    bytes[bytes.length - 1] ^= 0xff;
    await fs.writeFile(copy, bytes);
    expect(await refusal(existingSplitEntries(output, SPLIT_ENTRIES, SPLIT_NAMES, '--output data'))).toMatch(
      /is not the image splits\.csv lists \(its sha256 differs\)/,
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

  it('a stopped first run (checkpoint/ and history.json) stays ours after a kill at any point of the emptying', async () => {
    const folder = path.join(dir, 'stopped');
    await fs.cp(stoppedRun, folder, { recursive: true });
    const left: string[] = [];
    const rm = fs.rm.bind(fs);
    const rename = fs.rename.bind(fs);
    const check = async () =>
      left.push(await checkOutputFolder(folder, 'model', '--model-dir m').catch((err: Error) => err.message));
    vi.spyOn(fs, 'rm').mockImplementation(async (file, options) => {
      // A recursive removal is many steps: a kill may come between any two of them.
      if ((await fs.lstat(file).catch(() => undefined))?.isDirectory()) {
        for (const name of await fs.readdir(file)) {
          await rm(path.join(String(file), name), { recursive: true, force: true });
          await check();
        }
      }
      await rm(file, options);
      await check();
    });
    vi.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      await rename(from, to);
      await check();
    });
    await emptyOurFolder(folder, { kind: 'model', label: '--model-dir m' });
    vi.restoreAllMocks();
    expect(left.length).toBeGreaterThan(3);
    expect(left.slice(0, -1)).toEqual(left.slice(0, -1).map(() => 'ours'));
    expect(left.at(-1)).toBe('empty');
  });

  it('checked again as it starts: a file that appeared since the command checked the folder stops it, untouched', async () => {
    const folder = path.join(dir, 'model');
    await fs.cp(savedModel, folder, { recursive: true });
    expect(await checkOutputFolder(folder, 'model', '--model-dir model')).toBe('ours');
    await fs.writeFile(path.join(folder, 'notes.txt'), 'written during the run');
    const before = await snapshotTree(folder);
    expect(await refusal(emptyOurFolder(folder, { kind: 'model', label: '--model-dir model' }))).toMatch(
      /^--model-dir model holds files that are not a model .*\(notes\.txt is not a file this tool writes\)/,
    );
    expect(await snapshotTree(folder)).toEqual(before);
  });
});
