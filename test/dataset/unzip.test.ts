import { promises as fsp, writeFileSync } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractCellImages, unsafeEntryReason } from '../../src/dataset/unzip.js';
import { UserError } from '../../src/errors.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { SAMPLE_DIR, sampleNames, snapshotTree } from '../support/sample.js';
import { buildZip, miniArchive } from '../support/zip.js';

async function sample(className: string, index: number): Promise<Buffer> {
  const names = await sampleNames(className, index + 1);
  return fsp.readFile(path.join(SAMPLE_DIR, className, names[index]));
}

/** Swaps a same-length placeholder in every file name record (local header and central directory). */
function renameInZip(zip: Buffer, from: string, to: string): Buffer {
  expect(to.length).toBe(from.length);
  const out = Buffer.from(zip);
  let at = out.indexOf(from);
  expect(at).toBeGreaterThanOrEqual(0);
  while (at >= 0) {
    out.write(to, at, 'latin1');
    at = out.indexOf(from, at + 1);
  }
  return out;
}

describe('extractCellImages', () => {
  let dir: string;
  let zipPath: string;
  let dest: string;
  beforeEach(async () => {
    dir = await makeTempDir();
    zipPath = path.join(dir, 'cell_images.zip');
    dest = path.join(dir, 'cell_images');
  });
  afterEach(async () => removeDir(dir));

  it('flattens both layouts to <Class>/<file>, skipping the nested copy and Thumbs.db', async () => {
    const { zip, images } = await miniArchive(3);
    await fsp.writeFile(zipPath, zip);
    const progress: number[] = [];
    let total = 0;
    const result = await extractCellImages(zipPath, dest, {
      onStart: (n) => (total = n),
      onProgress: (done) => progress.push(done),
    });
    expect(result.images).toBe(6);
    expect(result.perClass).toEqual({ Parasitized: 3, Uninfected: 3 });
    expect(result.duplicates).toHaveLength(6);
    expect(result.duplicates.every((name) => name.startsWith('cell_images/cell_images/'))).toBe(true);
    expect(result.nonImages).toHaveLength(4);
    expect(result.nonImages.every((name) => name.endsWith('/Thumbs.db'))).toBe(true);
    expect(progress.at(-1)).toBe(total);

    const tree = await snapshotTree(dest);
    const files = [...tree].filter(([, info]) => typeof info === 'object');
    expect(files.map(([rel]) => rel).sort()).toEqual([...images.keys()].sort());
    for (const [rel, bytes] of images) expect(await fsp.readFile(path.join(dest, rel))).toEqual(bytes);
    // The archive's modification time is kept.
    const [first] = images.keys();
    expect((await fsp.stat(path.join(dest, first))).mtime.getUTCFullYear()).toBe(2018);
    // Nothing else beside the destination: the temporary folder was renamed away.
    expect((await fsp.readdir(dir)).sort()).toEqual(['cell_images', 'cell_images.zip']);
  });

  it('handles an archive that holds only the nested copy', async () => {
    const bytes = await sample('Parasitized', 0);
    await fsp.writeFile(
      zipPath,
      await buildZip([
        ['cell_images/cell_images/Parasitized/a.png', bytes],
        ['top.png', bytes],
      ]),
    );
    const result = await extractCellImages(zipPath, dest);
    expect(result.perClass).toEqual({ Parasitized: 1 });
    expect(result.unlabelled).toEqual(['top.png']);
    expect(await fsp.readFile(path.join(dest, 'Parasitized', 'a.png'))).toEqual(bytes);
  });

  it('keeps a different image that shares class and name, under a numbered name', async () => {
    const a = await sample('Parasitized', 0);
    const b = await sample('Parasitized', 1);
    expect(a.length).not.toBe(b.length);
    await fsp.writeFile(
      zipPath,
      await buildZip([
        ['x/Parasitized/cell.png', a],
        ['y/Parasitized/cell.png', b],
        ['z/Parasitized/cell.png', a],
      ]),
    );
    const result = await extractCellImages(zipPath, dest);
    expect(result.renamed).toEqual(['y/Parasitized/cell.png']);
    expect(result.duplicates).toEqual(['z/Parasitized/cell.png']);
    expect(await fsp.readFile(path.join(dest, 'Parasitized', 'cell.png'))).toEqual(a);
    expect(await fsp.readFile(path.join(dest, 'Parasitized', 'cell-2.png'))).toEqual(b);
  });

  it('refuses entries that climb out of the destination (zip slip) and writes nothing', async () => {
    const bytes = await sample('Uninfected', 0);
    // yazl will not write ".." itself, so the name is patched afterwards.
    const zip = renameInZip(
      await buildZip([
        ['cell_images/Uninfected/ok.png', bytes],
        ['QQ/QQ/evil.png', bytes],
      ]),
      'QQ/QQ/',
      '../../',
    );
    await fsp.writeFile(zipPath, zip);
    const err = await extractCellImages(zipPath, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(
      /holds an entry with an unsafe name .*\.\.\/\.\.\/evil\.png.*refusing to extract it$/,
    );
    expect((err as UserError).exitCode).toBe(1);
    expect((await fsp.readdir(dir)).sort()).toEqual(['cell_images.zip']);
    expect(await fse.pathExists(path.join(dir, '..', 'evil.png'))).toBe(false);
  });

  it('names unsafe paths', () => {
    expect(unsafeEntryReason('/etc/passwd')).toBe('absolute path');
    expect(unsafeEntryReason('C:/x.png')).toBe('absolute path');
    expect(unsafeEntryReason('a/../../x.png')).toBe('path with ".."');
    expect(unsafeEntryReason('a\\..\\x.png')).toBe('path with ".."');
    expect(unsafeEntryReason('cell_images/Parasitized/x..png')).toBeUndefined();
  });

  it('detects a corrupt entry by its checksum', async () => {
    const bytes = await sample('Uninfected', 0);
    const zip = await buildZip([['cell_images/Uninfected/a.png', bytes]], true);
    // Flip a byte in the middle of the stored (uncompressed) data; sizes stay the same.
    const at = zip.indexOf(bytes.subarray(100, 140)) + 10;
    zip[at] ^= 0xff;
    await fsp.writeFile(zipPath, zip);
    await expect(extractCellImages(zipPath, dest)).rejects.toThrow(/corrupt \(checksum mismatch\)/);
    expect(await fse.pathExists(dest)).toBe(false);
  });

  it('says a truncated archive cannot be extracted', async () => {
    const { zip } = await miniArchive(1);
    await fsp.writeFile(zipPath, zip.subarray(0, zip.length - 30));
    const err = await extractCellImages(zipPath, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(
      /^cannot extract .*cell_images\.zip .*delete it and run `malaria download` again$/,
    );
  });

  it('refuses to overwrite without force, replaces an earlier extraction with force, and clears leftovers', async () => {
    const { zip } = await miniArchive(1);
    await fsp.writeFile(zipPath, zip);
    await extractCellImages(zipPath, dest);
    await expect(extractCellImages(zipPath, dest)).rejects.toThrow(/already exists; pass --force/);
    await fsp.mkdir(path.join(dir, '.cell_images.malaria-tmp-999999999-0123abcd'));
    // Named as an earlier version named its leftovers, but nothing proves it wrote this: it stays.
    await fsp.mkdir(path.join(dir, '.cell_images-999999999-tmp'));
    await extractCellImages(zipPath, dest, { force: true });
    expect((await fsp.readdir(dest)).sort()).toEqual(['Parasitized', 'Uninfected']);
    expect((await fsp.readdir(dir)).sort()).toEqual(['.cell_images-999999999-tmp', 'cell_images', 'cell_images.zip']);
  });

  it('checks the destination again right before replacing it: an image someone added while it extracted is kept', async () => {
    const { zip } = await miniArchive(1);
    await fsp.writeFile(zipPath, zip);
    await extractCellImages(zipPath, dest);
    const mine = path.join(dest, 'Parasitized', 'slide-7-cell-3.png');
    const onProgress = (done: number) => void (done === 1 && writeFileSync(mine, 'added while extracting'));
    await expect(extractCellImages(zipPath, dest, { force: true, onProgress })).rejects.toThrow(
      /\(Parasitized\/slide-7-cell-3\.png is not an image of cell_images\.zip\); nothing was changed/,
    );
    expect(await fsp.readFile(mine, 'utf8')).toBe('added while extracting');
    expect((await fsp.readdir(dir)).sort()).toEqual(['cell_images', 'cell_images.zip']);
  });

  it('--force never replaces a folder holding images the archive does not have', async () => {
    const { zip } = await miniArchive(1);
    await fsp.writeFile(zipPath, zip);
    await extractCellImages(zipPath, dest);
    // Someone's own image beside the extracted ones, or a folder of their own images.
    await fsp.writeFile(path.join(dest, 'Parasitized', 'slide-7-cell-3.png'), await sample('Parasitized', 5));
    const before = await snapshotTree(dest);
    const err = await extractCellImages(zipPath, dest, { force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toMatch(
      /cell_images holds files that are not images extracted from .*cell_images\.zip \(Parasitized\/slide-7-cell-3\.png is not an image of cell_images\.zip\); nothing was changed/,
    );
    expect(await snapshotTree(dest)).toEqual(before);
  });

  it('drops a nested copy only when its bytes are the same: a different image of the same name and size is kept', async () => {
    const a = await sample('Parasitized', 0);
    // The same size and name, different pixels (one byte of the image data changed, checksums recomputed by yazl).
    const b = Buffer.from(a);
    b[b.length - 20] ^= 0xff;
    expect(b.length).toBe(a.length);
    await fsp.writeFile(
      zipPath,
      await buildZip([
        ['cell_images/Parasitized/cell.png', a],
        ['cell_images/cell_images/Parasitized/cell.png', b],
        ['copy/Parasitized/cell.png', a],
        ['copy2/Parasitized/cell.png', b],
      ]),
    );
    const result = await extractCellImages(zipPath, dest);
    expect(result.images).toBe(2);
    expect(result.renamed).toEqual(['cell_images/cell_images/Parasitized/cell.png']);
    expect(result.duplicates).toEqual(['copy/Parasitized/cell.png', 'copy2/Parasitized/cell.png']);
    expect(await fsp.readFile(path.join(dest, 'Parasitized', 'cell.png'))).toEqual(a);
    expect(await fsp.readFile(path.join(dest, 'Parasitized', 'cell-2.png'))).toEqual(b);
  });
});
