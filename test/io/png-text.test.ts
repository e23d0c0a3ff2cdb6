import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { crc32, isPng, readPngText, withPngText } from '../../src/io/png-text.js';

const redSquare = () =>
  sharp({ create: { width: 6, height: 4, channels: 3, background: '#CC2200' } })
    .png()
    .toBuffer();

describe('crc32', () => {
  it('gives the check value of CRC-32 and the CRC every PNG ends with', () => {
    expect(crc32(Buffer.from('123456789', 'latin1'))).toBe(0xcbf43926);
    // IEND has no data: its chunk's CRC is over the type alone.
    expect(crc32(Buffer.from('IEND', 'latin1'))).toBe(0xae426082);
    expect(crc32(new Uint8Array())).toBe(0);
  });
});

describe('withPngText and readPngText', () => {
  it('write a tEXt chunk that sharp (libspng) reads back, the pixels unchanged', async () => {
    const png = await redSquare();
    const marked = withPngText(withPngText(png, 'Software', 'malaria'), 'Comment', 'a plot');
    expect(marked.length).toBe(png.length + 12 + 'Software\0malaria'.length + 12 + 'Comment\0a plot'.length);
    expect(readPngText(marked)).toEqual(
      new Map([
        ['Comment', 'a plot'],
        ['Software', 'malaria'],
      ]),
    );
    const seen = await sharp(marked).metadata();
    expect(seen.comments).toEqual(
      expect.arrayContaining([
        { keyword: 'Software', text: 'malaria' },
        { keyword: 'Comment', text: 'a plot' },
      ]),
    );
    const pixels = async (bytes: Buffer) => sharp(bytes).raw().toBuffer();
    expect(await pixels(marked)).toEqual(await pixels(png));
  });

  it('finds the chunk in the head of the file alone', async () => {
    const marked = withPngText(await redSquare(), 'Software', 'malaria');
    expect(readPngText(marked.subarray(0, 64)).get('Software')).toBe('malaria');
    // Cut inside the chunk: not read.
    expect(readPngText(marked.subarray(0, 50)).size).toBe(0);
  });

  it('reads nothing from a chunk whose CRC does not match, nor from what is not a PNG', async () => {
    const marked = withPngText(await redSquare(), 'Software', 'malaria');
    const altered = Buffer.from(marked);
    altered[marked.indexOf('malaria', 0, 'latin1')] = 'l'.charCodeAt(0);
    expect(readPngText(altered).size).toBe(0);
    expect(readPngText(Buffer.from('Software\0malaria'))).toEqual(new Map());
    expect(isPng(Buffer.from('# README\n'))).toBe(false);
    expect(readPngText(await redSquare())).toEqual(new Map());
  });

  it('refuses what is not a PNG and keywords the format does not allow', async () => {
    expect(() => withPngText(Buffer.from('not a png at all, not at all'), 'Software', 'x')).toThrow(RangeError);
    const png = await redSquare();
    for (const keyword of ['', ' Software', 'Soft\0ware', 'x'.repeat(80)]) {
      expect(() => withPngText(png, keyword, 'x'), JSON.stringify(keyword)).toThrow(RangeError);
    }
  });
});
