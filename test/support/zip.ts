// Zip archives built in memory for the download and unzip tests, among them the NIH archive in miniature.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { thumbsDb } from './images.js';
import { CLASS_NAMES, SAMPLE_DIR, sampleNames } from './sample.js';

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
  for (const className of CLASS_NAMES) {
    entries.push([`cell_images/${className}/`, null]);
    for (const name of await sampleNames(className, perClass)) {
      const bytes = await fsp.readFile(path.join(SAMPLE_DIR, className, name));
      images.set(`${className}/${name}`, bytes);
      entries.push([`cell_images/${className}/${name}`, bytes]);
    }
    entries.push([`cell_images/${className}/Thumbs.db`, thumbsDb()]);
  }
  for (const className of CLASS_NAMES) {
    for (const [key, bytes] of images)
      if (key.startsWith(`${className}/`)) entries.push([`cell_images/cell_images/${key}`, bytes]);
    entries.push([`cell_images/cell_images/${className}/Thumbs.db`, thumbsDb()]);
  }
  return { zip: await buildZip(entries), images };
}
