import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertDistinctFiles,
  assertOutsideFolder,
  checkOutputFile,
  checkOutputFiles,
  markAsOurs,
} from '../../src/io/output-file.js';
import { withPngText } from '../../src/io/png-text.js';
import { expectUserError } from '../support/errors.js';
import { makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('malaria-output-file-');
});
afterAll(async () => removeDir(dir));

const grayPng = () =>
  sharp({ create: { width: 4, height: 4, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();

/** Writes `content` at `name` in the test folder; returns its path. */
async function fileWith(name: string, content: string | Buffer): Promise<string> {
  const file = path.join(dir, name);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, content);
  return file;
}

describe('checkOutputFile', () => {
  it('lets a missing file be written, even in a folder that does not exist yet', async () => {
    expect(await checkOutputFile(path.join(dir, 'none.png'), '--roc none.png')).toBe('missing');
    expect(await checkOutputFile(path.join(dir, 'new', 'folder', 'roc.png'), '--roc')).toBe('missing');
  });

  it('lets one of our PNGs be replaced without --force', async () => {
    const ours = await fileWith('ours.png', markAsOurs(await grayPng()));
    expect(await checkOutputFile(ours, '--roc ours.png')).toBe('ours');
    // A later version may add its number to the name.
    const later = await fileWith('later.png', withPngText(await grayPng(), 'Software', 'malaria 2.0.0'));
    expect(await checkOutputFile(later, '--roc later.png')).toBe('ours');
  });

  it('refuses anything else in one line, untouched, unless --force', async () => {
    const cases: [string, string | Buffer, string][] = [
      ['README.md', '# Notes\n', 'it is not a PNG'],
      ['photo.png', await grayPng(), 'it is a PNG another program wrote'],
      ['other.png', withPngText(await grayPng(), 'Software', 'malariaviewer'), 'it is a PNG another program wrote'],
      ['named.png', withPngText(await grayPng(), 'Comment', 'malaria'), 'it is a PNG another program wrote'],
      ['empty.png', '', 'it is not a PNG'],
    ];
    for (const [name, content, reason] of cases) {
      const file = await fileWith(name, content);
      const before = await fsp.readFile(file);
      const pattern = new RegExp(
        `^--plot ${name.replace('.', '\\.')} is not a file this tool wrote \\(${reason}\\); nothing was changed: choose another file, or pass --force to replace it$`,
      );
      await expectUserError(checkOutputFile(file, `--plot ${name}`), pattern);
      expect(await fsp.readFile(file), name).toEqual(before);
      expect(await checkOutputFile(file, `--plot ${name}`, { force: true }), name).toBe('forced');
    }
  });

  it('leaves --force out of the advice where it cannot be given', async () => {
    const file = await fileWith('notes.txt', 'mine');
    await expectUserError(
      checkOutputFile(file, '--plot notes.txt', { forceAllowed: false }),
      /: choose another file, or move it away yourself$/,
    );
  });

  it('judges a symbolic link by itself, not by the PNG of ours it points to', async () => {
    const ours = await fileWith('target.png', markAsOurs(await grayPng()));
    const link = path.join(dir, 'link.png');
    await fsp.symlink(ours, link);
    await expectUserError(checkOutputFile(link, '--roc link.png'), /\(it is a symbolic link\)/);
    expect(await checkOutputFile(link, '--roc link.png', { force: true })).toBe('forced');
  });

  it('refuses a folder even with --force, and a path through a file', async () => {
    const folder = path.join(dir, 'a-folder');
    await fsp.mkdir(folder);
    await expectUserError(
      checkOutputFile(folder, '--roc a-folder', { force: true }),
      /^--roc a-folder is a folder: name a file to write$/,
    );
    const file = await fileWith('plain.txt', 'x');
    await expectUserError(checkOutputFile(path.join(file, 'roc.png'), '--roc plain.txt/roc.png'), /not a folder/);
  });
});

describe('where an output file may lie', () => {
  it('two outputs may not name the same file, however spelled', async () => {
    await fsp.mkdir(path.join(dir, 'plots'), { recursive: true });
    await expectUserError(
      assertDistinctFiles([
        { path: path.join(dir, 'plots', 'a.png'), label: '--roc a.png' },
        { path: path.join(dir, 'plots', 'b.png'), label: '--calibration b.png' },
        { path: path.join(dir, 'plots', '..', 'plots', 'a.png'), label: '--errors ../plots/a.png' },
      ]),
      /^--roc a\.png and --errors \.\.\/plots\/a\.png name the same file; give each its own$/,
    );
    await assertDistinctFiles([
      { path: path.join(dir, 'plots', 'a.png'), label: '--roc' },
      { path: path.join(dir, 'plots', 'b.png'), label: '--calibration' },
    ]);
  });

  it('an output file stays out of a model folder, and out of the folders the command reads', async () => {
    const model = { path: path.join(dir, 'model'), label: '--model-dir model' };
    await expectUserError(
      assertOutsideFolder(
        { path: path.join(dir, 'model', 'plot.png'), label: '--plot model/plot.png' },
        model,
        'the model',
      ),
      /^--plot model\/plot\.png lies inside --model-dir model, which holds the model and nothing else; choose a path outside it$/,
    );
    await assertOutsideFolder({ path: path.join(dir, 'model-plot.png'), label: '--plot' }, model, 'the model');
    const split = { path: path.join(dir, 'data', 'testing'), label: 'the testing split' };
    await expectUserError(
      checkOutputFiles(
        [{ path: path.join(dir, 'data', 'testing', 'Parasitized', 'e.png'), label: '--errors e.png' }],
        [split],
      ),
      /^--errors e\.png lies inside the testing split, which this command reads and must not change/,
    );
  });

  it('checkOutputFiles checks every file before the caller writes any', async () => {
    const ours = await fileWith('batch/ours.png', markAsOurs(await grayPng()));
    const theirs = await fileWith('batch/theirs.txt', 'notes');
    const outputs = [
      { path: ours, label: '--roc ours.png' },
      { path: theirs, label: '--calibration theirs.txt' },
    ];
    await expectUserError(checkOutputFiles(outputs, []), /^--calibration theirs\.txt is not a file this tool wrote/);
    await checkOutputFiles(
      outputs.map((output) => ({ ...output, force: true })),
      [],
    );
  });
});
