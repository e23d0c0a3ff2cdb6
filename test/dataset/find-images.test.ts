import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listDataset } from '../../src/dataset/find-images.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample } from '../support/sample.js';
import { thumbsDb } from '../support/images.js';

describe('listDataset', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => removeDir(dir));

  it('handles the Kaggle mirror: nested full copy and Thumbs.db in every class folder', async () => {
    const official = await copySample(dir, 3);
    await copySample(path.join(dir, 'cell_images'), 3); // byte-identical nested copy
    for (const folder of ['Parasitized', 'Uninfected', 'cell_images/Parasitized', 'cell_images/Uninfected']) {
      await fsp.writeFile(path.join(dir, folder, 'Thumbs.db'), thumbsDb());
    }
    const listing = await listDataset(dir);
    expect(listing.classNames).toEqual(['Parasitized', 'Uninfected']);
    expect(listing.images.map((image) => image.relativePath).sort()).toEqual([...official].sort());
    expect(listing.images.every((image) => image.format === 'png')).toBe(true);
    expect(listing.duplicates).toHaveLength(6);
    for (const duplicate of listing.duplicates) {
      expect(duplicate.relativePath).toBe(`cell_images/${duplicate.keptRelativePath}`);
      expect(duplicate.crossClass).toBe(false);
    }
    expect(listing.nonImages).toEqual([
      'Parasitized/Thumbs.db',
      'Uninfected/Thumbs.db',
      'cell_images/Parasitized/Thumbs.db',
      'cell_images/Uninfected/Thumbs.db',
    ]);
    expect(listing.rejected).toEqual([]);
  });

  it('labels an image by the folder that directly holds it', async () => {
    // Only the nested copy exists: its images are still Parasitized / Uninfected, not "cell_images".
    await copySample(path.join(dir, 'cell_images', 'cell_images'), 2);
    const listing = await listDataset(dir);
    expect(listing.classNames).toEqual(['Parasitized', 'Uninfected']);
    expect(listing.images.map((image) => image.className)).toEqual([
      'Parasitized',
      'Parasitized',
      'Uninfected',
      'Uninfected',
    ]);
    expect(listing.images[0].relativePath.startsWith('cell_images/cell_images/Parasitized/')).toBe(true);
  });

  it('flags a duplicate filed under two classes and keeps the first path', async () => {
    const [first] = await copySample(dir, 1);
    await fsp.copyFile(path.join(dir, first), path.join(dir, 'Uninfected', 'copy.png'));
    const listing = await listDataset(dir);
    expect(listing.duplicates).toEqual([
      { relativePath: 'Uninfected/copy.png', keptRelativePath: first, crossClass: true },
    ]);
    expect(listing.images).toHaveLength(2);
  });

  it('reports image-named junk, images outside a class folder, and non-images separately', async () => {
    await copySample(dir, 1);
    await fsp.writeFile(path.join(dir, 'Parasitized', 'empty.png'), '');
    await fsp.writeFile(path.join(dir, 'Parasitized', 'note.png'), 'this is text, not a picture');
    await fsp.writeFile(path.join(dir, 'Parasitized', '.DS_Store'), 'Bud1');
    const [one] = (await fsp.readdir(path.join(dir, 'Uninfected'))).map((name) => path.join(dir, 'Uninfected', name));
    await fsp.copyFile(one, path.join(dir, 'loose.png'));
    const listing = await listDataset(dir);
    expect(listing.rejected).toEqual([
      { relativePath: 'Parasitized/empty.png', reason: 'empty file' },
      { relativePath: 'Parasitized/note.png', reason: 'content is not a known image format' },
    ]);
    expect(listing.unlabelled).toEqual(['loose.png']);
    expect(listing.nonImages).toEqual(['Parasitized/.DS_Store']);
    expect(listing.images).toHaveLength(2);
  });

  it('reports progress for every file inspected', async () => {
    await copySample(dir, 4);
    const seen: number[] = [];
    let total = -1;
    await listDataset(dir, { onStart: (n) => (total = n), onProgress: (done) => seen.push(done), concurrency: 3 });
    expect(total).toBe(8);
    expect(seen.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
