import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listSplit } from '../../src/input/split-folder.js';
import { UserError } from '../../src/errors.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { samplePaths } from '../support/sample.js';

let root: string;

beforeEach(async () => {
  root = await makeTempDir('malaria-dataset-');
});

afterEach(async () => removeDir(root));

/** Copies sample images into `<root>/<split>/<Class>/` under new names, returning the split folder. */
async function layout(classes: Record<string, string[]>, splitName = 'training'): Promise<string> {
  const split = path.join(root, splitName);
  for (const [className, names] of Object.entries(classes)) {
    await fsp.mkdir(path.join(split, className), { recursive: true });
    const sources = await samplePaths('Uninfected', names.length);
    for (const [i, name] of names.entries()) await fsp.copyFile(sources[i], path.join(split, className, name));
  }
  return split;
}

describe('listSplit', () => {
  it('sorts classes by name, sorts files within a class, and labels by class index', async () => {
    // Created in unsorted order, with names whose sorted order differs from creation order.
    const split = await layout({ Uninfected: ['b.png', 'a.png'], Parasitized: ['z.png', 'c.png', 'm.png'] });
    const listing = await listSplit(split);
    expect(listing.classNames).toEqual(['Parasitized', 'Uninfected']);
    expect(listing.files.map((f) => [path.relative(split, f.path), f.label])).toEqual([
      [path.join('Parasitized', 'c.png'), 0],
      [path.join('Parasitized', 'm.png'), 0],
      [path.join('Parasitized', 'z.png'), 0],
      [path.join('Uninfected', 'a.png'), 1],
      [path.join('Uninfected', 'b.png'), 1],
    ]);
  });

  it('sorts by code unit like Python (uppercase before lowercase), not by locale', async () => {
    const split = await layout({ beta: ['x.png'], Zeta: ['x.png'], alpha: ['x.png'] });
    expect((await listSplit(split)).classNames).toEqual(['Zeta', 'alpha', 'beta']);
  });

  it('skips non-image files by content and reports image-named files that are not images', async () => {
    const split = await layout({ Parasitized: ['cell.png'], Uninfected: ['cell.png'] });
    const para = path.join(split, 'Parasitized');
    await fsp.writeFile(
      path.join(para, 'Thumbs.db'),
      Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0, 0]),
    );
    await fsp.writeFile(path.join(para, 'notes.txt'), 'hello');
    await fsp.writeFile(path.join(para, 'empty.png'), '');
    await fsp.writeFile(path.join(para, '._cell.png'), Buffer.from([0, 5, 22, 7, 0, 2, 0, 0]));
    // An image with a misleading name is still an image (content decides).
    await fsp.copyFile(path.join(para, 'cell.png'), path.join(para, 'renamed.dat'));
    await fsp.mkdir(path.join(split, '.ipynb_checkpoints'));
    const listing = await listSplit(split);
    expect(listing.classNames).toEqual(['Parasitized', 'Uninfected']);
    expect(listing.files.map((f) => path.basename(f.path))).toEqual(['cell.png', 'renamed.dat', 'cell.png']);
    expect(listing.nonImages.map((f) => path.basename(f)).sort()).toEqual(['._cell.png', 'Thumbs.db', 'notes.txt']);
    expect(listing.rejected).toEqual([{ path: path.join(para, 'empty.png'), reason: 'empty file' }]);
  });

  it('ignores folders without images as classes: an empty one, one with junk only, a link loop', async () => {
    const split = await layout({ Uninfected: ['a.png'], Parasitized: ['p.png'] });
    await fsp.mkdir(path.join(split, 'Empty', 'Nested'), { recursive: true });
    await fsp.mkdir(path.join(split, 'Junk'));
    await fsp.writeFile(path.join(split, 'Junk', 'Thumbs.db'), 'junk');
    await fsp.symlink('.', path.join(split, 'Loop'));
    const listing = await listSplit(split);
    expect(listing.classNames).toEqual(['Parasitized', 'Uninfected']);
    expect(listing.files.map((f) => [path.basename(f.path), f.label])).toEqual([
      ['p.png', 0],
      ['a.png', 1],
    ]);
    for (const folder of ['Empty', 'Junk', 'Loop']) expect(listing.nonImages).toContain(path.join(split, folder));
    // Nor are they refused as folders foreign to a model's classes (evaluation).
    const forced = await listSplit(split, { classNames: ['Parasitized', 'Uninfected'] });
    expect(forced.files).toEqual(listing.files);
  });

  it('uses forced class names for order and labels, allowing a missing class folder', async () => {
    const split = await layout({ Uninfected: ['a.png'] });
    const listing = await listSplit(split, { classNames: ['Uninfected', 'Parasitized', 'Other'] });
    expect(listing.classNames).toEqual(['Uninfected', 'Parasitized', 'Other']);
    expect(listing.files.map((f) => f.label)).toEqual([0]);
    const swapped = await layout({ Parasitized: ['p.png'], Uninfected: ['a.png'] }, 'testing');
    const forced = await listSplit(swapped, { classNames: ['Uninfected', 'Parasitized'] });
    expect(forced.files.map((f) => [path.basename(path.dirname(f.path)), f.label])).toEqual([
      ['Uninfected', 0],
      ['Parasitized', 1],
    ]);
  });

  it('refuses a folder that is not one of the forced classes', async () => {
    const split = await layout({ Parasitized: ['a.png'], parasitized: ['b.png'] });
    await expect(listSplit(split, { classNames: ['Parasitized', 'Uninfected'] })).rejects.toThrow(
      /parasitized.*not one of the model's classes/,
    );
  });

  it('throws a one-line UserError for a missing folder, a file, no class folders and no images', async () => {
    const missing = path.join(root, 'nope');
    await expect(listSplit(missing)).rejects.toThrow(UserError);
    await expect(listSplit(missing)).rejects.toThrow(/nope not found/);

    const file = path.join(root, 'file.txt');
    await fsp.writeFile(file, 'x');
    await expect(listSplit(file)).rejects.toThrow(/not a folder/);

    const flat = path.join(root, 'flat');
    await fsp.mkdir(flat);
    await fsp.copyFile((await samplePaths('Parasitized', 1))[0], path.join(flat, 'loose.png'));
    const noClasses = await listSplit(flat).catch((err: unknown) => err);
    expect(noClasses).toBeInstanceOf(UserError);
    expect((noClasses as UserError).message).toMatch(/no class folders/);
    expect((noClasses as UserError).message).not.toContain('\n');

    const empty = path.join(root, 'empty');
    await fsp.mkdir(path.join(empty, 'Parasitized'), { recursive: true });
    await fsp.writeFile(path.join(empty, 'Parasitized', 'Thumbs.db'), 'junk');
    await expect(listSplit(empty)).rejects.toThrow(/no images/);
  });
});
