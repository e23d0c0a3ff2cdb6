// Lists one split folder the way Keras' flow_from_directory does: one subfolder per class, classes sorted by
// name, label = class index, files sorted within each class. Images are recognised by content, not by name.
import { promises as fsp, type Dirent } from 'node:fs';
import path from 'node:path';
import { UserError, describeFsError } from '../errors.js';
import { classifyFile, readHeader } from '../io/image-files.js';
import { mapLimit } from '../io/map-limit.js';
import type { LabelledFile } from './types.js';

/** A file with an image's name whose bytes are not an image (empty, truncated header, text...). */
export interface RejectedImage {
  path: string;
  reason: string;
}

export interface SplitListing {
  classNames: string[];
  /** Images in class order, then file-name order; label = index into classNames. */
  files: LabelledFile[];
  /** Entries that are not image files (Thumbs.db, .DS_Store, README.txt, nested folders): ignored, like Keras does. */
  nonImages: string[];
  /** Image-named files that are not images: left out of `files` and reported. */
  rejected: RejectedImage[];
}

export interface ListSplitOptions {
  /**
   * Force the class order (evaluation must use the class names saved with the model, or labels could shift).
   * Class folders missing from `dir` simply contribute no images; a folder not among them is an error.
   */
  classNames?: readonly string[];
  /** Header reads in flight. */
  concurrency?: number;
}

/** Code-unit order, like Python's sorted(): no locale, so every machine agrees on labels. */
const compareNames = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Follows a symlink to learn what it points at; a dangling link is neither file nor folder. */
async function kindOf(entry: Dirent, fullPath: string): Promise<'file' | 'folder' | 'other'> {
  if (entry.isDirectory()) return 'folder';
  if (entry.isFile()) return 'file';
  if (!entry.isSymbolicLink()) return 'other';
  const stats = await fsp.stat(fullPath).catch(() => undefined);
  return stats?.isDirectory() ? 'folder' : stats?.isFile() ? 'file' : 'other';
}

async function readFolder(dir: string): Promise<Dirent[]> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new UserError(`data folder ${dir} not found: check the path, or create the splits first`);
    if (code === 'ENOTDIR')
      throw new UserError(`${dir} is not a folder: pass the folder that holds one subfolder per class`);
    const message = describeFsError(err, dir);
    if (message) throw new UserError(message);
    throw err;
  }
}

/** Lists `<dir>/<Class>/<file>`; throws UserError when the folder is missing or holds no class folders or images. */
export async function listSplit(dir: string, options: ListSplitOptions = {}): Promise<SplitListing> {
  const entries = await readFolder(dir);
  // Hidden folders (.git, .ipynb_checkpoints) are tooling, not classes.
  const folders: string[] = [];
  for (const entry of entries) {
    if (!entry.name.startsWith('.') && (await kindOf(entry, path.join(dir, entry.name))) === 'folder')
      folders.push(entry.name);
  }
  folders.sort(compareNames);
  if (folders.length === 0) {
    throw new UserError(
      `${dir} has no class folders: put the images in one subfolder per class (for example ${path.join(dir, 'Parasitized')})`,
    );
  }

  // Every folder's files, recognised by content. A folder without a single image (empty, junk only, a link loop)
  // is not a class: a model trained with it would have an output no image ever teaches.
  const candidates: { path: string; name: string; folder: string }[] = [];
  const nonImages: string[] = [];
  for (const folder of folders) {
    const classDir = path.join(dir, folder);
    const classEntries = (await readFolder(classDir)).sort((a, b) => compareNames(a.name, b.name));
    for (const entry of classEntries) {
      const full = path.join(classDir, entry.name);
      // Nested folders are not walked (Keras would); split folders are flat and a nested copy would double-count.
      if ((await kindOf(entry, full)) === 'file') candidates.push({ path: full, name: entry.name, folder });
      else nonImages.push(full);
    }
  }
  const kinds = await mapLimit(candidates, options.concurrency ?? 16, async (file) => {
    const header = await readHeader(file.path);
    const size = header.length === 0 ? 0 : 1; // only "empty or not" matters for the reason text
    return classifyFile(file.name, header, size);
  });
  const withImages = new Set(candidates.filter((_, i) => kinds[i].kind === 'image').map((file) => file.folder));
  if (withImages.size === 0) {
    throw new UserError(
      `${dir} has no images in its class folders (${(options.classNames ?? folders).join(', ')}): check the path`,
    );
  }
  for (const folder of folders) if (!withImages.has(folder)) nonImages.push(path.join(dir, folder));

  let classNames = folders.filter((folder) => withImages.has(folder));
  if (options.classNames) {
    const forced = options.classNames;
    const unknown = classNames.filter((name) => !forced.includes(name));
    if (unknown.length > 0) {
      throw new UserError(
        `${path.join(dir, unknown[0])} is not one of the model's classes (${forced.join(', ')}): rename or remove that folder`,
      );
    }
    classNames = [...forced];
  }

  const listing: SplitListing = { classNames, files: [], nonImages, rejected: [] };
  candidates.forEach((file, i) => {
    const kind = kinds[i];
    if (kind.kind === 'image') listing.files.push({ path: file.path, label: classNames.indexOf(file.folder) });
    else if (kind.kind === 'broken-image') listing.rejected.push({ path: file.path, reason: kind.reason });
    else if (withImages.has(file.folder)) listing.nonImages.push(file.path);
  });
  // Class order, then file-name order within a class (the sort is stable).
  listing.files.sort((a, b) => a.label - b.label);
  return listing;
}
