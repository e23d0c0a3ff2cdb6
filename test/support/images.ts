// Image files generated on the spot: cells re-encoded in other formats, odd but valid images, broken files and
// files that are not images at all (Thumbs.db, .DS_Store, notes).
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import sharp from 'sharp';
import { CLASS_NAMES, SAMPLE_DIR, sampleNames } from './sample.js';

/**
 * `perClass` sample cells of each class copied into `dir`, plus the first cell re-encoded three ways: as a
 * grayscale PNG, a JPEG and an RGBA PNG (opaque), so the browser's decoding is compared with sharp's beyond
 * plain RGB PNGs. Returns the absolute paths, sorted by name (the page's order).
 */
export async function cellImages(dir: string, perClass: number): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const className of CLASS_NAMES) {
    for (const name of await sampleNames(className, perClass)) {
      const target = path.join(dir, `${className.toLowerCase()}-${name}`);
      await fsp.copyFile(path.join(SAMPLE_DIR, className, name), target);
      files.push(target);
    }
  }
  const first = files[0];
  const variants: [string, ReturnType<typeof sharp>][] = [
    ['variant-gray.png', sharp(first).greyscale().png()],
    ['variant.jpg', sharp(first).jpeg({ quality: 90 })],
    ['variant-rgba.png', sharp(first).ensureAlpha().png()],
  ];
  for (const [name, image] of variants) {
    await image.toFile(path.join(dir, name));
    files.push(path.join(dir, name));
  }
  return files.sort((a, b) => path.basename(a).localeCompare(path.basename(b), undefined, { numeric: true }));
}

/** Bytes that look like a Windows Thumbs.db (an OLE compound file header): not an image. */
export function thumbsDb(): Buffer {
  return Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(504, 7)]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A tiny file claiming huge dimensions (a decompression bomb): the header says width x height gray
 * pixels, the data holds one row. Decoders must refuse it by the pixel limit, not try to allocate it.
 */
export function pngBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(width + 1))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

const uniform = (gray: number, width = 24, height = 24) =>
  sharp({ create: { width, height, channels: 3, background: { r: gray, g: gray, b: gray } } });

/**
 * Odd but valid images of a uniform gray level, each a different format: file name -> gray level. Each reads
 * as that gray in RGB only if decoded right (a 1-channel read breaks the model's input, alpha flattened on
 * black darkens it, a 16-bit value not scaled back is far off).
 */
export async function writeOddImages(dir: string, grays: readonly number[]): Promise<Map<string, number>> {
  if (grays.length < 8) throw new Error('writeOddImages needs 8 gray levels');
  await fsp.mkdir(dir, { recursive: true });
  const written = new Map<string, number>();
  const write = async (name: string, gray: number, image: ReturnType<typeof sharp>) => {
    await image.toFile(path.join(dir, name));
    written.set(name, gray);
  };
  const [g0, g1, g2, g3, g4, g5, g6, g7] = grays;
  await write('gray.png', g0, uniform(g0).grayscale().png());
  // Half-transparent: the colour must be kept, not blended with a background.
  await write(
    'rgba.png',
    g1,
    sharp({ create: { width: 24, height: 24, channels: 4, background: { r: g1, g: g1, b: g1, alpha: 0.5 } } }).png(),
  );
  await write('palette.png', g2, uniform(g2).png({ palette: true, colours: 4 }));
  await write('sixteen-bit.png', g3, uniform(g3).toColourspace('rgb16').png());
  await write('really a jpeg.png', g4, uniform(g4).jpeg({ quality: 95 }));
  await write('one-pixel.png', g5, uniform(g5, 1, 1).png());
  await write('cellule numéro 5, "copie".png', g6, uniform(g6).png());
  await write('细胞 Ölprobe.png', g7, uniform(g7).png());
  return written;
}

/** Broken files with image names: each must be set aside, none may stop the command. Returns the names. */
export async function writeBrokenImages(dir: string): Promise<{ names: string[]; bomb: string }> {
  await fsp.mkdir(dir, { recursive: true });
  const [name] = await sampleNames('Parasitized', 1);
  const real = await fsp.readFile(path.join(SAMPLE_DIR, 'Parasitized', name));
  await fsp.writeFile(path.join(dir, 'truncated.png'), real.subarray(0, Math.floor(real.length / 2)));
  await fsp.writeFile(path.join(dir, 'zero-bytes.png'), '');
  await fsp.writeFile(path.join(dir, 'text.jpg'), 'this is a note, not a picture\n');
  // 138 bytes that claim 60,000 x 60,000 = 3.6 billion pixels.
  await fsp.writeFile(path.join(dir, 'bomb.png'), pngBomb(60_000, 60_000));
  return { names: ['bomb.png', 'text.jpg', 'truncated.png', 'zero-bytes.png'], bomb: 'bomb.png' };
}

/** Files that are not images at all and carry no image name: skipped without complaint. */
export async function writeNonImages(dir: string): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'Thumbs.db'), thumbsDb());
  // A Finder .DS_Store starts with its "Bud1" buddy-allocator header.
  await fsp.writeFile(
    path.join(dir, '.DS_Store'),
    Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from('Bud1'), Buffer.alloc(200, 0)]),
  );
  await fsp.writeFile(path.join(dir, 'notes.txt'), 'slide 12, stained 2024-03-02\n');
  return ['.DS_Store', 'Thumbs.db', 'notes.txt'];
}
