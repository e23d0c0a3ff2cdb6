// The bundled NIH sample (malaria/sample) as test input: its file names, copies of it, and snapshots that prove
// a folder was left untouched.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { BuildDatasetOptions } from '../../src/dataset/build.js';

export const SAMPLE_DIR = path.resolve('malaria/sample');
/** The sample's class folders, in sorted order: also the class names of every test model. */
export const CLASS_NAMES = ['Parasitized', 'Uninfected'] as const;

/** The first `count` sample file names of a class, in sorted order. */
export async function sampleNames(className: string, count: number): Promise<string[]> {
  const names = (await fsp.readdir(path.join(SAMPLE_DIR, className))).filter((name) => name.endsWith('.png')).sort();
  if (names.length < count) throw new Error(`malaria/sample/${className} has only ${names.length} images`);
  return names.slice(0, count);
}

/** The absolute paths of the first `count` sample images of a class, in sorted order. */
export async function samplePaths(className: string, count: number): Promise<string[]> {
  return (await sampleNames(className, count)).map((name) => path.join(SAMPLE_DIR, className, name));
}

/**
 * Copies `perClass` sample images of each class (or of the classes a record names, with their counts), starting at
 * `offset`, into `<dest>/<Class>/`; returns the relative paths written. Copies keep their modification times so
 * snapshots compare cleanly.
 */
export async function copySample(
  dest: string,
  perClass: number | Record<string, number>,
  offset = 0,
): Promise<string[]> {
  const counts = typeof perClass === 'number' ? Object.fromEntries(CLASS_NAMES.map((c) => [c, perClass])) : perClass;
  const written: string[] = [];
  for (const [className, count] of Object.entries(counts)) {
    await fsp.mkdir(path.join(dest, className), { recursive: true });
    for (const name of (await sampleNames(className, offset + count)).slice(offset)) {
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
        const sha256 = createHash('sha256')
          .update(await fsp.readFile(abs))
          .digest('hex');
        out.set(rel, { sha256, size: stats.size, mtimeMs: stats.mtimeMs });
      }
    }
  }
  await visit('');
  return out;
}

/** build-dataset's options for a test split: the tutorial's 80/10 per-cell split with seed 42, unless overridden. */
export function splitOptions(
  input: string,
  output: string,
  overrides: Partial<BuildDatasetOptions> = {},
): BuildDatasetOptions {
  return { input, output, trainSplit: 0.8, valSplit: 0.1, seed: 42, force: false, groupBy: 'cell', ...overrides };
}
