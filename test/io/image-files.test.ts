import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyFile, detectImageFormat, readHeader, sha256File, walkFiles } from '../../src/io/image-files.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { SAMPLE_DIR, sampleNames } from '../support/sample.js';
import { thumbsDb } from '../support/images.js';

const pixels = { create: { width: 4, height: 3, channels: 3 as const, background: { r: 200, g: 10, b: 30 } } };

/** A 2x2 24-bit BMP written by hand (sharp does not encode BMP). */
function tinyBmp(): Buffer {
  const rowBytes = 8; // 2 pixels * 3 bytes, padded to 4
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'ascii');
  header.writeUInt32LE(54 + rowBytes * 2, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14); // BITMAPINFOHEADER
  header.writeInt32LE(2, 18);
  header.writeInt32LE(2, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  return Buffer.concat([header, Buffer.alloc(rowBytes * 2, 0x80)]);
}

describe('detectImageFormat', () => {
  it('recognises each format by its first bytes', async () => {
    expect(detectImageFormat(await sharp(pixels).png().toBuffer())).toBe('png');
    expect(detectImageFormat(await sharp(pixels).jpeg().toBuffer())).toBe('jpeg');
    expect(detectImageFormat(await sharp(pixels).gif().toBuffer())).toBe('gif');
    expect(detectImageFormat(await sharp(pixels).webp().toBuffer())).toBe('webp');
    expect(detectImageFormat(await sharp(pixels).tiff().toBuffer())).toBe('tiff');
    expect(detectImageFormat(tinyBmp())).toBe('bmp');
  });

  it('rejects text, Thumbs.db, empty input and a bare "BM" prefix', () => {
    expect(detectImageFormat(Buffer.from('hello, this is not a picture'))).toBeUndefined();
    expect(detectImageFormat(Buffer.from('BM but then a plain sentence follows'))).toBeUndefined();
    expect(detectImageFormat(thumbsDb())).toBeUndefined();
    expect(detectImageFormat(Buffer.alloc(0))).toBeUndefined();
    // A truncated PNG signature is not a PNG.
    expect(detectImageFormat(Buffer.from([0x89, 0x50, 0x4e, 0x47]))).toBeUndefined();
  });
});

describe('classifyFile', () => {
  it('trusts content over the name', async () => {
    const jpeg = await sharp(pixels).jpeg().toBuffer();
    expect(classifyFile('cell.png', jpeg, jpeg.length)).toEqual({ kind: 'image', format: 'jpeg' });
    const png = await sharp(pixels).png().toBuffer();
    expect(classifyFile('no-extension', png, png.length)).toEqual({ kind: 'image', format: 'png' });
  });

  it('calls image-named junk a broken image (to report), and other junk just other', () => {
    expect(classifyFile('x.png', Buffer.alloc(0), 0)).toEqual({ kind: 'broken-image', reason: 'empty file' });
    expect(classifyFile('x.JPG', Buffer.from('text'), 4).kind).toBe('broken-image');
    expect(classifyFile('Thumbs.db', thumbsDb(), 512)).toEqual({ kind: 'other' });
    expect(classifyFile('README.txt', Buffer.from('read me'), 7)).toEqual({ kind: 'other' });
    // macOS AppleDouble metadata beside a real file.
    expect(classifyFile('._cell.png', Buffer.from([0, 5, 22, 7, 0, 2, 0, 0]), 4096)).toEqual({ kind: 'other' });
  });
});

describe('readHeader and sha256File', () => {
  it('read the start and the hash of a real sample image', async () => {
    const [name] = await sampleNames('Parasitized', 1);
    const file = path.join(SAMPLE_DIR, 'Parasitized', name);
    expect(detectImageFormat(await readHeader(file))).toBe('png');
    const { createHash } = await import('node:crypto');
    expect(await sha256File(file)).toBe(
      createHash('sha256')
        .update(await fsp.readFile(file))
        .digest('hex'),
    );
  });
});

describe('walkFiles', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => removeDir(dir));

  it('lists regular files with their parent folder, ignores empty folders, sorted', async () => {
    await fsp.mkdir(path.join(dir, 'b/inner'), { recursive: true });
    await fsp.mkdir(path.join(dir, 'a'), { recursive: true });
    await fsp.mkdir(path.join(dir, 'empty/deeper'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'b/inner/2.png'), 'x');
    await fsp.writeFile(path.join(dir, 'b/1.png'), 'xy');
    await fsp.writeFile(path.join(dir, 'a/z.png'), 'xyz');
    await fsp.writeFile(path.join(dir, 'top.txt'), '');
    const { files } = await walkFiles(dir);
    expect(files.map((f) => [f.relativePath, f.parentName, f.size])).toEqual([
      ['a/z.png', 'a', 3],
      ['b/1.png', 'b', 2],
      ['b/inner/2.png', 'inner', 1],
      ['top.txt', undefined, 0],
    ]);
  });

  it('does not follow folder links (a loop ends), but lists links to files', async () => {
    await fsp.mkdir(path.join(dir, 'Parasitized'));
    await fsp.writeFile(path.join(dir, 'Parasitized/a.png'), 'a');
    await fsp.symlink('..', path.join(dir, 'Parasitized/loop'));
    await fsp.symlink('a.png', path.join(dir, 'Parasitized/alias.png'));
    await fsp.symlink('missing.png', path.join(dir, 'Parasitized/dangling.png'));
    const result = await walkFiles(dir);
    expect(result.files.map((f) => f.relativePath)).toEqual(['Parasitized/a.png', 'Parasitized/alias.png']);
    expect(result.skippedFolderLinks).toEqual(['Parasitized/loop']);
    expect(result.skippedSpecial).toEqual(['Parasitized/dangling.png']);
  });

  it('never enters excluded folders', async () => {
    await fsp.mkdir(path.join(dir, 'keep'));
    await fsp.mkdir(path.join(dir, 'training'));
    await fsp.writeFile(path.join(dir, 'keep/a.png'), 'a');
    await fsp.writeFile(path.join(dir, 'training/b.png'), 'b');
    const { files } = await walkFiles(dir, { exclude: (p) => p === path.join(dir, 'training') });
    expect(files.map((f) => f.relativePath)).toEqual(['keep/a.png']);
  });
});
