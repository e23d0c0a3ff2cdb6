import { promises as fsp } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildDataset, type BuildDatasetOptions } from '../../src/dataset/build.js';
import { formatBuildSummary } from '../../src/report/build-summary.js';
import { parseCsv } from '../../src/io/csv.js';
import { splitSizes } from '../../src/dataset/split.js';
import { DEAD_PID, makeTempDir, removeDir } from '../support/temp.js';
import { copySample, snapshotTree } from '../support/sample.js';
import { pngBomb, thumbsDb } from '../support/images.js';
import { expectUserError } from '../support/errors.js';

const SPLITS = ['training', 'validation', 'testing'] as const;

interface ManifestRow {
  split: string;
  label: string;
  file: string;
  sha256: string;
  patient: string;
  bytes: number;
}

async function readManifest(output: string): Promise<ManifestRow[]> {
  const [header, ...rows] = parseCsv(await fsp.readFile(path.join(output, 'splits.csv'), 'utf8'));
  expect(header).toEqual(['split', 'label', 'file', 'sha256', 'patient', 'bytes']);
  return rows.map(([split, label, file, sha256, patient, bytes]) => ({
    split,
    label,
    file,
    sha256,
    patient,
    bytes: Number(bytes),
  }));
}

/** Relative paths of every file under `<output>/<split>/`. */
async function filesIn(output: string, split: string): Promise<string[]> {
  const out: string[] = [];
  for (const className of await fsp.readdir(path.join(output, split))) {
    for (const name of await fsp.readdir(path.join(output, split, className))) out.push(`${className}/${name}`);
  }
  return out.sort();
}

describe('buildDataset', () => {
  let dir: string;
  let input: string;
  let output: string;
  let options: BuildDatasetOptions;

  beforeEach(async () => {
    dir = await makeTempDir();
    input = path.join(dir, 'cell_images');
    output = path.join(dir, 'out');
    options = {
      input,
      output,
      trainSplit: 0.8,
      valSplit: 0.1,
      seed: 42,
      force: false,
      groupBy: 'cell',
      concurrency: 4,
    };
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await removeDir(dir);
  });

  it('copies every image into its split and class folder, writes the manifest, leaves the input untouched', async () => {
    await copySample(input, 15);
    const before = await snapshotTree(input);
    const result = await buildDataset(options);
    expect(await snapshotTree(input)).toEqual(before);

    const sizes = splitSizes(30, options);
    const rows = await readManifest(output);
    expect(rows).toHaveLength(30);
    for (const split of SPLITS) {
      const splitRows = rows.filter((row) => row.split === split);
      expect(splitRows).toHaveLength(sizes[split]);
      expect(await filesIn(output, split)).toEqual(
        splitRows.map((row) => `${row.label}/${path.basename(row.file)}`).sort(),
      );
      expect(Object.values(result.counts[split]).reduce((a, b) => a + b, 0)).toBe(sizes[split]);
    }
    // Disjoint and complete.
    expect(new Set(rows.map((row) => row.file)).size).toBe(30);
    for (const row of rows) {
      const source = before.get(row.file);
      expect(source).toMatchObject({ sha256: row.sha256 });
      expect(row.label).toBe(row.file.split('/')[0]);
      expect(row.patient).toMatch(/^C\d+P\d+$/);
      const copy = path.join(output, row.split, row.label, path.basename(row.file));
      const stats = await fsp.stat(copy);
      // Copies keep the source's modification time (to the millisecond utimes offers).
      expect(Math.abs(stats.mtimeMs - (source as { mtimeMs: number }).mtimeMs)).toBeLessThan(1);
      expect(stats.size).toBe((source as { size: number }).size);
      expect(row.bytes).toBe(stats.size);
    }
    expect(result.classNames).toEqual(['Parasitized', 'Uninfected']);
    // No temporary folder is left behind.
    expect((await fsp.readdir(output)).sort()).toEqual(['splits.csv', 'testing', 'training', 'validation']);
  });

  it('gives the same manifest for the same seed and a different one for another seed', async () => {
    await copySample(input, 20);
    await buildDataset({ ...options, output: path.join(dir, 'a') });
    await buildDataset({ ...options, output: path.join(dir, 'b') });
    await buildDataset({ ...options, output: path.join(dir, 'c'), seed: 43 });
    const a = await fsp.readFile(path.join(dir, 'a', 'splits.csv'), 'utf8');
    expect(await fsp.readFile(path.join(dir, 'b', 'splits.csv'), 'utf8')).toBe(a);
    expect(await fsp.readFile(path.join(dir, 'c', 'splits.csv'), 'utf8')).not.toBe(a);
  });

  it('refuses to mix with an existing split, and replaces it with --force', async () => {
    await copySample(input, 5);
    await buildDataset(options);
    await fsp.writeFile(path.join(output, 'keep-me.txt'), 'not ours');
    const manifestBefore = await fsp.readFile(path.join(output, 'splits.csv'), 'utf8');

    await expectUserError(buildDataset({ ...options, seed: 1 }), /already holds a split .*pass --force/);
    expect(await fsp.readFile(path.join(output, 'splits.csv'), 'utf8')).toBe(manifestBefore);

    const result = await buildDataset({ ...options, seed: 1, force: true });
    expect(result.replaced).toEqual(['training', 'validation', 'testing', 'splits.csv']);
    expect(await fsp.readFile(path.join(output, 'keep-me.txt'), 'utf8')).toBe('not ours');
    expect((await readManifest(output)).length).toBe(10);
  });

  it('--force never replaces a split that holds files it did not write, or split folders without its manifest', async () => {
    await copySample(input, 5);
    await buildDataset(options);
    await fsp.writeFile(path.join(output, 'training', 'Parasitized', 'mine.png'), 'added by someone');
    const before = await snapshotTree(output);
    await expectUserError(
      buildDataset({ ...options, seed: 1, force: true }),
      /holds files that are not a split written by `malaria build-dataset` \(training\/Parasitized holds \d+ files where splits\.csv lists \d+\)/,
    );
    expect(await snapshotTree(output)).toEqual(before);

    // Split folders of another tool (the Keras tutorial's build_dataset.py writes training/ and testing/ too), or
    // one empty folder: not a split of ours either.
    const other = path.join(dir, 'keras');
    await copySample(path.join(other, 'training'), 1);
    await expectUserError(
      buildDataset({ ...options, output: other, force: true }),
      /\(it has training but no splits\.csv\)/,
    );
    expect((await fsp.readdir(path.join(other, 'training', 'Parasitized'))).length).toBe(1);
    await fsp.mkdir(path.join(dir, 'lone', 'validation'), { recursive: true });
    await expectUserError(
      buildDataset({ ...options, output: path.join(dir, 'lone') }),
      /\(it has validation but no splits\.csv\)/,
    );
  });

  it('keeps the old split intact when a run fails half-way, and leaves no partial split', async () => {
    await copySample(input, 10);
    await buildDataset(options);
    const before = await snapshotTree(output);
    let copies = 0;
    const realCopy = fse.copy.bind(fse);
    vi.spyOn(fse, 'copy').mockImplementation(async (...args: Parameters<typeof fse.copy>) => {
      if (++copies === 7) throw new Error('simulated crash while copying');
      return realCopy(...args);
    });
    await expect(buildDataset({ ...options, seed: 9, force: true })).rejects.toThrow('simulated crash');
    expect(await snapshotTree(output)).toEqual(before);
  });

  it("removes temporary folders left by interrupted runs, and nothing named like an earlier version's", async () => {
    await copySample(input, 3);
    // A pid far above any real one: that run is gone.
    const leftover = path.join(output, `.split.malaria-tmp-${DEAD_PID}-0123abcd`);
    await fsp.mkdir(path.join(leftover, 'training', 'Parasitized'), { recursive: true });
    await fsp.writeFile(path.join(leftover, 'training', 'Parasitized', 'half.png'), 'x');
    // Named as an earlier version named its temporary folder, but nothing proves that it wrote it.
    const lookalike = path.join(output, `.build-dataset-${DEAD_PID}-tmp`);
    await copySample(lookalike, 1);
    const kept = await snapshotTree(lookalike);
    const result = await buildDataset(options);
    expect(result.removedLeftovers).toEqual([`.split.malaria-tmp-${DEAD_PID}-0123abcd`]);
    expect(await fse.pathExists(leftover)).toBe(false);
    expect(await snapshotTree(lookalike)).toEqual(kept);
    expect(formatBuildSummary(result).join('\n')).toMatch(/removed 1 temporary folder left by an interrupted run/);
  });

  it("finishes a killed run's swap only after what it left in the output is found to be ours", async () => {
    await copySample(input, 5);
    // The state a run killed in the middle of its swap leaves: the old split moved out into .replaced/ (here there
    // was none), its complete new split still in its temporary folder.
    const fresh = path.join(dir, 'fresh');
    await buildDataset({ ...options, output: fresh, seed: 3 });
    const manifest = await fsp.readFile(path.join(fresh, 'splits.csv'), 'utf8');
    const temp = path.join(output, `.split.malaria-tmp-${DEAD_PID}-0123abcd`);
    await fsp.mkdir(path.join(temp, '.replaced'), { recursive: true });
    for (const entry of ['training', 'validation', 'testing', 'splits.csv'])
      await fsp.rename(path.join(fresh, entry), path.join(temp, entry));

    // Someone put a training folder of their own where the old split had been: nothing may move.
    await copySample(path.join(output, 'training'), 1);
    let before = await snapshotTree(output);
    await expectUserError(
      buildDataset({ ...options, force: true }),
      /^--output .*out holds files that are not a split written by `malaria build-dataset` \(it has training but no splits\.csv\); nothing was changed/,
    );
    expect(await snapshotTree(output)).toEqual(before);

    // The killed run had moved its new training/ in already, and someone added a file to it: refused too.
    await fsp.rm(path.join(output, 'training'), { recursive: true });
    await fsp.rename(path.join(temp, 'training'), path.join(output, 'training'));
    await fsp.writeFile(path.join(output, 'training', 'Parasitized', 'mine.png'), 'added by someone');
    before = await snapshotTree(output);
    await expectUserError(
      buildDataset({ ...options, force: true }),
      /\(training\/Parasitized holds \d+ files where splits\.csv lists \d+\)/,
    );
    expect(await snapshotTree(output)).toEqual(before);

    // Only its own entries (checked against the manifest in its temporary folder): the move is finished, even by a
    // run that then refuses to replace the split without --force.
    await fsp.rm(path.join(output, 'training', 'Parasitized', 'mine.png'));
    await expectUserError(buildDataset(options), /already holds a split .*pass --force/);
    expect((await fsp.readdir(output)).sort()).toEqual(['splits.csv', 'testing', 'training', 'validation']);
    expect(await fsp.readFile(path.join(output, 'splits.csv'), 'utf8')).toBe(manifest);
  });

  it('checks the split again before replacing it: a file someone added while it copied stops the run, kept', async () => {
    await copySample(input, 5);
    await buildDataset(options);
    let copies = 0;
    const realCopy = fse.copy.bind(fse);
    vi.spyOn(fse, 'copy').mockImplementation(async (...args: Parameters<typeof fse.copy>) => {
      if (++copies === 3)
        await fsp.writeFile(path.join(output, 'testing', 'Uninfected', 'mine.png'), 'added meanwhile');
      return realCopy(...args);
    });
    await expectUserError(
      buildDataset({ ...options, seed: 2, force: true }),
      /\(testing\/Uninfected holds \d+ files where splits\.csv lists \d+\)/,
    );
    expect(await fsp.readFile(path.join(output, 'testing', 'Uninfected', 'mine.png'), 'utf8')).toBe('added meanwhile');
    // The old split is as it was, and the run's temporary folder is gone.
    expect((await fsp.readdir(output)).sort()).toEqual(['splits.csv', 'testing', 'training', 'validation']);
  });

  it('handles the Kaggle layout: nested copy and Thumbs.db', async () => {
    const kaggle = path.join(dir, 'kaggle', 'cell_images');
    await copySample(kaggle, 4);
    await copySample(path.join(kaggle, 'cell_images'), 6); // 4 identical to the top copy, 2 more per class
    for (const folder of ['Parasitized', 'Uninfected', 'cell_images/Parasitized', 'cell_images/Uninfected']) {
      await fsp.writeFile(path.join(kaggle, folder, 'Thumbs.db'), thumbsDb());
    }
    const result = await buildDataset({ ...options, input: kaggle });
    expect(result.classNames).toEqual(['Parasitized', 'Uninfected']);
    expect(result.duplicates).toHaveLength(8);
    expect(result.nonImages).toHaveLength(4);
    const rows = await readManifest(output);
    expect(rows).toHaveLength(12);
    expect(new Set(rows.map((row) => row.sha256)).size).toBe(12);
    const summary = formatBuildSummary(result);
    expect(summary).toContain(
      'skipped 4 non-image files (Parasitized/Thumbs.db, Uninfected/Thumbs.db, cell_images/Parasitized/Thumbs.db, ...)',
    );
    expect(summary.filter((line) => line.startsWith('dropped 8 duplicate images (identical bytes'))).toHaveLength(1);
    expect(summary.some((line) => /^found 12 usable images in 2 classes \(Parasitized, Uninfected\)/.test(line))).toBe(
      true,
    );
  });

  it('sets aside files that do not decode, and accepts odd but valid images', async () => {
    const copied = await copySample(input, 3);
    const real = await fsp.readFile(path.join(input, copied[0]));
    const p = (name: string): string => path.join(input, 'Parasitized', name);
    // Broken: truncated PNG, zero bytes, text under a .png name, a decompression bomb.
    await fsp.writeFile(p('truncated.png'), real.subarray(0, Math.floor(real.length / 2)));
    await fsp.writeFile(p('zero.png'), '');
    await fsp.writeFile(p('text.png'), 'not an image at all\n');
    await fsp.writeFile(p('bomb.png'), pngBomb(20_000, 20_000));
    // Odd but valid.
    const base = sharp(real);
    await base.clone().grayscale().png().toFile(p('gray.png'));
    await base.clone().ensureAlpha(0.5).png().toFile(p('rgba.png'));
    await base.clone().png({ palette: true, colours: 16 }).toFile(p('palette.png'));
    await base.clone().toColourspace('rgb16').png().toFile(p('sixteen-bit.png'));
    await base.clone().jpeg().toFile(p('really-a-jpeg.png'));
    await sharp({ create: { width: 1, height: 1, channels: 3, background: '#f00' } })
      .png()
      .toFile(p('one-pixel.png'));
    await base.clone().png().toFile(p('cellule numéro 5, "copie".png'));
    // Not images at all: skipped, neither copied nor reported as broken.
    await fsp.writeFile(
      p('.DS_Store'),
      Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from('Bud1'), Buffer.alloc(64)]),
    );
    await fsp.writeFile(p('notes.txt'), 'slide 12\n');
    const before = await snapshotTree(input);

    const result = await buildDataset(options);
    expect(await snapshotTree(input)).toEqual(before);
    expect(result.rejected.map((r) => r.relativePath)).toEqual([
      'Parasitized/bomb.png',
      'Parasitized/text.png',
      'Parasitized/truncated.png',
      'Parasitized/zero.png',
    ]);
    expect(result.rejected.find((r) => r.relativePath.endsWith('bomb.png'))!.reason).toMatch(/pixel limit/i);
    expect(result.nonImages).toEqual(['Parasitized/.DS_Store', 'Parasitized/notes.txt']);
    const [header, ...rejectedRows] = parseCsv(await fsp.readFile(path.join(output, 'rejected.csv'), 'utf8'));
    expect(header).toEqual(['file', 'reason']);
    expect(rejectedRows.map(([file]) => file)).toEqual(result.rejected.map((r) => r.relativePath));
    expect(rejectedRows.every(([, reason]) => reason.length > 0)).toBe(true);

    const rows = await readManifest(output);
    expect(rows).toHaveLength(6 + 7);
    const files = new Set(rows.map((row) => row.file));
    for (const name of [
      'gray.png',
      'rgba.png',
      'palette.png',
      'sixteen-bit.png',
      'really-a-jpeg.png',
      'one-pixel.png',
      'cellule numéro 5, "copie".png',
    ]) {
      expect(files.has(`Parasitized/${name}`), name).toBe(true);
    }
    for (const bad of ['truncated.png', 'zero.png', 'text.png', 'bomb.png']) {
      expect(files.has(`Parasitized/${bad}`)).toBe(false);
      for (const split of SPLITS)
        expect(await fse.pathExists(path.join(output, split, 'Parasitized', bad))).toBe(false);
    }
    // The comma and quotes survived the CSV round trip, and the raw file quotes that field.
    expect(await fsp.readFile(path.join(output, 'splits.csv'), 'utf8')).toContain(
      '"Parasitized/cellule numéro 5, ""copie"".png"',
    );
    expect(formatBuildSummary(result)).toContain(
      `set aside 4 files that do not decode as images (reasons in ${path.join(output, 'rejected.csv')}; not copied)`,
    );
  });

  it('ignores empty folders and does not hang on a folder link loop', async () => {
    await copySample(input, 3);
    await fsp.mkdir(path.join(input, 'Empty', 'Nested'), { recursive: true });
    await fsp.symlink('..', path.join(input, 'Parasitized', 'loop'));
    const result = await buildDataset(options);
    expect(result.classNames).toEqual(['Parasitized', 'Uninfected']);
    expect(result.notFollowed).toEqual(['Parasitized/loop']);
    expect((await readManifest(output)).length).toBe(6);
  });

  it('splits whole patients with --group-by patient', async () => {
    await copySample(input, 60);
    const result = await buildDataset({ ...options, groupBy: 'patient' });
    const rows = await readManifest(output);
    expect(rows).toHaveLength(120);
    const splitOf = new Map<string, Set<string>>();
    for (const row of rows) splitOf.set(row.patient, (splitOf.get(row.patient) ?? new Set()).add(row.split));
    for (const [patient, splits] of splitOf) expect([...splits], patient).toHaveLength(1);
    const patients = result.patients!;
    expect(patients.training + patients.validation + patients.testing).toBe(splitOf.size);
    for (const split of SPLITS) {
      expect(patients[split]).toBe(new Set(rows.filter((row) => row.split === split).map((row) => row.patient)).size);
    }
    const summary = formatBuildSummary(result);
    expect(summary.some((line) => line.startsWith('grouped by patient: no patient has images in two splits'))).toBe(
      true,
    );
    expect(summary.find((line) => line.startsWith('split'))).toMatch(/patients$/);
  });

  it('refuses missing input, input without class folders, and outputs that overlap the input', async () => {
    await expectUserError(buildDataset(options), /input folder .* not found; run `malaria download`/);
    await fsp.mkdir(path.join(input, 'Parasitized'), { recursive: true });
    await fsp.writeFile(path.join(input, 'Parasitized', 'notes.txt'), 'no images here');
    await expectUserError(buildDataset(options), /no class folders with images in/);
    await copySample(input, 2);
    await expectUserError(
      buildDataset({ ...options, output: path.join(input, 'out') }),
      /training \(written by this command\) lies inside --input .*, which this command reads and must not change/,
    );
    await expectUserError(buildDataset({ ...options, output: input }), /lies inside --input/);
    // Input inside a split folder of the output: --force would delete it.
    const nested = path.join(dir, 'base', 'training', 'raw');
    await copySample(nested, 2);
    await expectUserError(
      buildDataset({ ...options, input: nested, output: path.join(dir, 'base'), force: true }),
      /training \(written by this command\) contains --input /,
    );
    expect((await fsp.readdir(path.join(nested, 'Parasitized'))).length).toBe(2);
  });

  it('refuses an input with a single class', async () => {
    await copySample(input, 2);
    await fsp.rm(path.join(input, 'Uninfected'), { recursive: true });
    await expectUserError(buildDataset(options), /only one class folder with images .*\(Parasitized\)/);
  });
});
