// Test inputs for the data commands: temp folders filled with copies of the bundled NIH sample.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';

export const SAMPLE_DIR = path.resolve('malaria/sample');
export const CLASSES = ['Parasitized', 'Uninfected'] as const;

export async function makeTempDir(prefix = 'malaria-data-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
}

/** The first `count` sample file names of a class, in sorted order. */
export async function sampleNames(className: string, count: number): Promise<string[]> {
  const names = (await fsp.readdir(path.join(SAMPLE_DIR, className))).filter((name) => name.endsWith('.png')).sort();
  if (names.length < count) throw new Error(`malaria/sample/${className} has only ${names.length} images`);
  return names.slice(0, count);
}

/**
 * Copies `perClass` sample images of each class (starting at `offset`) into `<dest>/<Class>/`; returns
 * the relative paths written. Copies keep their modification times so snapshots compare cleanly.
 */
export async function copySample(dest: string, perClass: number, offset = 0): Promise<string[]> {
  const written: string[] = [];
  for (const className of CLASSES) {
    await fsp.mkdir(path.join(dest, className), { recursive: true });
    for (const name of (await sampleNames(className, offset + perClass)).slice(offset)) {
      await fsp.copyFile(path.join(SAMPLE_DIR, className, name), path.join(dest, className, name));
      written.push(`${className}/${name}`);
    }
  }
  return written;
}

export interface FileSnapshot {
  sha256: string;
  size: number;
  mtimeMs: number;
}

/** Every file and folder under `root`, with content hash and modification time (to prove it was not touched). */
export async function snapshotTree(root: string): Promise<Map<string, FileSnapshot | 'dir' | 'link'>> {
  const out = new Map<string, FileSnapshot | 'dir' | 'link'>();
  async function visit(relative: string): Promise<void> {
    for (const entry of await fsp.readdir(path.join(root, relative), { withFileTypes: true })) {
      const rel = relative ? `${relative}/${entry.name}` : entry.name;
      const abs = path.join(root, rel);
      if (entry.isSymbolicLink()) out.set(rel, 'link');
      else if (entry.isDirectory()) {
        out.set(rel, 'dir');
        await visit(rel);
      } else {
        const stats = await fsp.stat(abs);
        const sha256 = createHash('sha256').update(await fsp.readFile(abs)).digest('hex');
        out.set(rel, { sha256, size: stats.size, mtimeMs: stats.mtimeMs });
      }
    }
  }
  await visit('');
  return out;
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

/** An archive entry for `buildZip`: a file (bytes) or a folder (null). */
export type ZipEntries = [name: string, content: Buffer | null][];

/** Builds a zip in memory with yazl (deflated unless `store`). */
export async function buildZip(entries: ZipEntries, store = false): Promise<Buffer> {
  const { ZipFile } = await import('yazl');
  const zip = new ZipFile();
  const mtime = new Date('2018-04-16T12:00:00Z');
  for (const [name, content] of entries) {
    if (content === null) zip.addEmptyDirectory(name, { mtime });
    else zip.addBuffer(content, name, { mtime, compress: !store });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The NIH archive in miniature, both layouts at once: `cell_images/<Class>/` (official) and the Kaggle
 * mirror's nested `cell_images/cell_images/<Class>/` copy, with a Thumbs.db in every class folder.
 * Returns the zip and the official images by "<Class>/<file>".
 */
export async function miniArchive(perClass = 3): Promise<{ zip: Buffer; images: Map<string, Buffer> }> {
  const images = new Map<string, Buffer>();
  const entries: ZipEntries = [['cell_images/', null]];
  for (const className of CLASSES) {
    entries.push([`cell_images/${className}/`, null]);
    for (const name of await sampleNames(className, perClass)) {
      const bytes = await fsp.readFile(path.join(SAMPLE_DIR, className, name));
      images.set(`${className}/${name}`, bytes);
      entries.push([`cell_images/${className}/${name}`, bytes]);
    }
    entries.push([`cell_images/${className}/Thumbs.db`, thumbsDb()]);
  }
  for (const className of CLASSES) {
    for (const [key, bytes] of images) if (key.startsWith(`${className}/`)) entries.push([`cell_images/cell_images/${key}`, bytes]);
    entries.push([`cell_images/cell_images/${className}/Thumbs.db`, thumbsDb()]);
  }
  return { zip: await buildZip(entries), images };
}
