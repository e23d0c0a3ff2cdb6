// Bad and odd files in the folders evaluate and predict read (build-dataset's input: test/data/build-dataset.test.ts).
// A model whose answer is known (P(Parasitized) rises with brightness) shows that each odd image is read as the
// right RGB pixels, not merely that it did not crash.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { snapshotTree } from '../support/sample.js';
import { writeBrokenImages, writeNonImages, writeOddImages } from '../support/images.js';
import { pParasitized, saveBrightnessModel } from '../support/models.js';

const BRIGHT = [200, 230, 180, 210, 190, 250, 220, 240];
const DARK = [30, 60, 10, 50, 40, 0, 20, 70];
// Mid grays, where the probability changes fastest with brightness (about 0.01 per level).
const MIXED = [140, 150, 120, 160, 110, 130, 100, 170];

let dir: string;
const modelDir = () => path.join(dir, 'model');
const data = () => path.join(dir, 'data');
const testing = (className: string) => path.join(data(), 'testing', className);
const cells = () => path.join(dir, 'cells');
let broken: { names: string[]; bomb: string };
let cellGrays: Map<string, number>;

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-odd-files-');
  await saveBrightnessModel(modelDir());

  // data/testing/: bright odd images are Parasitized, dark ones Uninfected; broken files, junk, an empty folder
  // and folder links that loop back up.
  await writeOddImages(testing('Parasitized'), BRIGHT);
  await writeOddImages(testing('Uninfected'), DARK);
  broken = await writeBrokenImages(testing('Parasitized'));
  for (const className of ['Parasitized', 'Uninfected']) await writeNonImages(testing(className));
  await fsp.mkdir(path.join(testing('Parasitized'), 'empty', 'deeper'), { recursive: true });
  await fsp.symlink('..', path.join(testing('Parasitized'), 'loop'));
  await fsp.symlink('.', path.join(testing('Uninfected'), 'self'));
  // Beside the class folders: an empty folder and a link back to the split; neither is a class.
  await fsp.mkdir(path.join(data(), 'testing', 'Empty'));
  await fsp.symlink('.', path.join(data(), 'testing', 'again'));

  // cells/: the same kinds of files for predict, one image in a subfolder, two link loops.
  cellGrays = await writeOddImages(cells(), MIXED);
  await writeBrokenImages(cells());
  await writeNonImages(cells());
  await writeOddImages(
    path.join(cells(), 'sub'),
    BRIGHT.map((g) => 255 - g),
  ).then((written) => {
    for (const [name, gray] of written) cellGrays.set(`sub/${name}`, gray);
  });
  await fsp.mkdir(path.join(cells(), 'empty'));
  await fsp.symlink('.', path.join(cells(), 'loop'));
  await fsp.symlink('../..', path.join(cells(), 'sub', 'up'));
});

afterAll(async () => removeDir(dir));

describe('evaluate on a split folder with odd, broken and junk files', () => {
  it('reads every odd image as RGB, sets the broken ones aside by name with a count, skips junk, ends despite link loops, changes nothing', async () => {
    const before = await snapshotTree(dir);
    const { code, stdout, stderr } = await runInProcess([
      'evaluate',
      '--data',
      data(),
      '--model-dir',
      modelDir(),
      '--backend',
      'cpu',
      '--batch-size',
      '4',
      '--json',
    ]);
    expect(code, stderr.join('\n')).toBe(0);
    expect(await snapshotTree(dir)).toEqual(before);

    const report = JSON.parse(stdout[0]);
    // 8 odd images per class, each on the right side of 0.5 only if its pixels were read right.
    expect(report.n).toBe(16);
    expect(report.confusion).toEqual([
      [8, 0],
      [0, 8],
    ]);
    const skipped = stderr.filter((line) => line.startsWith('skipped '));
    expect(skipped.map((line) => /^skipped (.*?): /.exec(line)?.[1]).sort()).toEqual(
      broken.names.map((name) => path.join(testing('Parasitized'), name)),
    );
    expect(skipped.find((line) => line.includes(broken.bomb))).toMatch(/pixel limit/);
    expect(stderr).toContain(
      'set aside 4 files of testing that do not decode as images (named above); evaluated the other 16',
    );
    // Junk, the empty folder and the links are neither evaluated nor reported as broken.
    expect(stderr.join('\n')).not.toMatch(/Thumbs\.db|\.DS_Store|notes\.txt|\/loop|\/self|\/empty|\/Empty|\/again/);
  }, 30_000);
});

describe('predict on folders and files with odd, broken and junk files', () => {
  it('gives each odd image the probability of its gray level, lists each broken one with its error, counts junk, ends despite link loops, changes nothing', async () => {
    const extra = path.join(cells(), 'one-pixel.png'); // named on the command line as well: classified once
    const before = await snapshotTree(dir);
    const { code, stdout, stderr } = await runInProcess([
      'predict',
      '--model-dir',
      modelDir(),
      '--backend',
      'cpu',
      '--batch-size',
      '3',
      '--json',
      cells(),
      extra,
      path.join(cells(), 'bomb.png'),
    ]);
    expect(await snapshotTree(dir)).toEqual(before);
    // Exit code 1: some files could not be classified; the rest were.
    expect(code).toBe(1);
    const entries = JSON.parse(stdout[0]) as { file: string; label?: string; probability?: number; error?: string }[];
    const byName = new Map(
      entries.map((entry) => [path.relative(cells(), entry.file).split(path.sep).join('/'), entry]),
    );
    expect(entries).toHaveLength(byName.size);
    expect([...byName.keys()].sort()).toEqual([...cellGrays.keys(), ...broken.names].sort());

    for (const [name, gray] of cellGrays) {
      const entry = byName.get(name)!;
      expect(entry.error, name).toBeUndefined();
      const p = entry.label === 'Parasitized' ? entry.probability! : 1 - entry.probability!;
      expect(Math.abs(p - pParasitized(gray)), `${name} (gray ${gray}): P = ${p}`).toBeLessThan(0.02);
    }
    for (const name of broken.names) expect(Object.keys(byName.get(name)!), name).toEqual(['file', 'error']);
    expect(byName.get('bomb.png')!.error).toMatch(/pixel limit/);
    expect(byName.get('zero-bytes.png')!.error).toBe('empty file');

    // 3 junk files and 2 folder links were skipped: counted, not listed as failures.
    const summary = `${cellGrays.size} images classified`;
    expect(stderr.find((line) => line.startsWith(summary))).toMatch(/; 4 failed; 5 non-image files skipped$/);
    expect(stderr).toContain(`malaria: 4 of ${cellGrays.size + 4} files could not be classified`);
  }, 30_000);

  it('a folder holding only junk, empty folders and a link loop is one line and exit code 2', async () => {
    const junk = path.join(dir, 'junk');
    await writeNonImages(junk);
    await fsp.mkdir(path.join(junk, 'empty'));
    await fsp.symlink('..', path.join(junk, 'empty', 'up'));
    const { code, stdout, stderr } = await runInProcess([
      'predict',
      '--model-dir',
      modelDir(),
      '--backend',
      'cpu',
      junk,
    ]);
    expect(code).toBe(2);
    expect(stdout).toEqual([]);
    expect(stderr.filter((line) => line.startsWith('malaria:'))).toEqual([
      `malaria: no image files found in ${junk} (4 other files skipped)`,
    ]);
  });
});
