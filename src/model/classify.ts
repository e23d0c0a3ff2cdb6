// `malaria predict`'s library: finds the images among files and folders, and classifies them in batches with the
// evaluation preprocessing (decode, the model's resize to its size and its stain step, x/255). A file that is missing
// or does not decode becomes an error entry; the others still run.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tf } from '../tf.js';
import { UserError, describeFsError } from '../errors.js';
import { scaleToUnit } from '../input/augment.js';
import { DecodeError, decodeCell } from '../input/decode.js';
import { preprocessingOf, type Preprocessing } from '../input/preprocessing.js';
import { classifyFile, readHeader, walkFiles } from '../io/image-files.js';
import { negativeIndexOf, positiveIndexOf, type ClassLabels } from '../stats/positive-class.js';
import { decide } from '../stats/decide.js';
import { summariseSlide, type SlideSummary } from '../stats/parasitemia.js';
import type { ModelMetadata } from './io.js';
import { withInferenceNetwork } from './fold-batch-norm.js';
import { batchProbabilities } from './inference.js';
import { imageShape } from './predict.js';

/** A file to classify, or one already known to be unusable. `file` is the name shown to the user. */
export type GatheredFile = { file: string; path: string } | { file: string; error: string };

export interface GatheredFiles {
  items: GatheredFile[];
  /** Files inside the folders that are not images (Thumbs.db, .DS_Store...): skipped silently, only counted. */
  skipped: string[];
}

export interface ClassifiedFile {
  file: string;
  label: string;
  /** Probability of `label`. */
  probability: number;
  /** P(class i), in the order of the model's class names. */
  probabilities: number[];
}

export interface FailedFile {
  file: string;
  error: string;
}

export type FileResult = ClassifiedFile | FailedFile;

export const isFailed = (result: FileResult): result is FailedFile => 'error' in result;

/** One line for a file that cannot be used, without its name (the result carries it). */
function fileError(err: unknown): string {
  if (err instanceof DecodeError) {
    // DecodeError's message starts with the file name; the entry already names the file.
    const prefix = `${err.file}: `;
    return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  }
  if (err instanceof UserError) return err.message;
  const described = describeFsError(err, 'file');
  if (described) return described.replace(/^file: /, '');
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}

/**
 * The files to classify, in argument order (folder contents sorted by path), each file once. Files named on the
 * command line are always tried; inside folders, files are recognised by their bytes: images are kept, files
 * with an image name but other content are errors, anything else is skipped.
 */
export async function gatherImageFiles(paths: readonly string[]): Promise<GatheredFiles> {
  const items: GatheredFile[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  const add = (item: GatheredFile, absolute: string): void => {
    if (seen.has(absolute)) return;
    seen.add(absolute);
    items.push(item);
  };
  for (const given of paths) {
    const absolute = path.resolve(given);
    let stat;
    try {
      stat = await fs.stat(given);
    } catch (err) {
      add({ file: given, error: fileError(err) }, absolute);
      continue;
    }
    if (stat.isFile()) {
      add({ file: given, path: given }, absolute);
      continue;
    }
    if (!stat.isDirectory()) {
      add({ file: given, error: 'not a file or folder' }, absolute);
      continue;
    }
    const walk = await walkFiles(given);
    // Folder links are not followed and special files (sockets, dangling links) never read: not images either.
    skipped.push(...[...walk.skippedFolderLinks, ...walk.skippedSpecial].map((relative) => path.join(given, relative)));
    for (const walked of walk.files) {
      const file = path.join(given, walked.relativePath);
      let kind;
      try {
        kind = classifyFile(walked.name, await readHeader(walked.absolutePath), walked.size);
      } catch (err) {
        add({ file, error: fileError(err) }, walked.absolutePath);
        continue;
      }
      if (kind.kind === 'image') add({ file, path: walked.absolutePath }, walked.absolutePath);
      else if (kind.kind === 'broken-image') add({ file, error: kind.reason }, walked.absolutePath);
      else skipped.push(file);
    }
  }
  return { items, skipped };
}

export interface ClassifyOptions {
  /** Images per forward pass. */
  batchSize: number;
  /** Two-class models: the model's positive class when P(positive) >= threshold. Others use argmax. */
  threshold: number;
  /** Test-time augmentation: the mean over the 8 flips and right-angle rotations of each image. */
  tta?: boolean;
  /** Called after each batch with the number of items handled so far. */
  onProgress?: (done: number, total: number) => void;
}

type Decoded = { index: number; image: Uint8Array } | { index: number; error: string };

/** Decodes one batch's files at once (sharp runs them on its thread pool). */
async function decodeBatch(
  items: readonly GatheredFile[],
  start: number,
  end: number,
  preprocessing: Preprocessing,
): Promise<Decoded[]> {
  const decodes: Promise<Decoded>[] = [];
  for (let index = start; index < end; index++) {
    const item = items[index];
    if ('error' in item) {
      decodes.push(Promise.resolve({ index, error: item.error }));
      continue;
    }
    decodes.push(
      decodeCell(item.path, preprocessing, item.file).then(
        (image) => ({ index, image }),
        (err: unknown) => ({ index, error: fileError(err) }),
      ),
    );
  }
  return Promise.all(decodes);
}

/**
 * Classifies `items` in batches of `batchSize`; results keep the order of `items`. The next batch decodes while
 * the current one runs through the model (its batch norms folded where it can: fold-batch-norm.ts); only one
 * batch's tensors are alive at a time.
 */
export async function classifyFiles(
  model: tf.LayersModel,
  metadata: ModelMetadata,
  items: readonly GatheredFile[],
  options: ClassifyOptions,
): Promise<FileResult[]> {
  const shape = imageShape(model);
  const size = metadata.imageSize;
  if (shape[0] !== size || shape[1] !== size || shape[2] !== 3) {
    throw new UserError(
      `the model takes ${shape.join('x')} images but its metadata.json says ${size}x${size}x3; train or export the model again`,
      1,
    );
  }
  const classNames = metadata.classNames;
  const twoClasses = classNames.length === 2;
  const positiveIndex = twoClasses ? positiveIndexOf(metadata) : -1;
  const negativeIndex = twoClasses ? negativeIndexOf(metadata) : -1;
  const classOf = (row: ArrayLike<number>): number => {
    if (twoClasses) return decide(row[positiveIndex], options.threshold) ? positiveIndex : negativeIndex;
    let best = 0;
    for (let c = 1; c < row.length; c++) if (row[c] > row[best]) best = c;
    return best;
  };
  const pixels = size * size * 3;
  const preprocessing = preprocessingOf(metadata);
  const results: FileResult[] = new Array(items.length);
  const batchSize = options.batchSize;
  const decodeAt = (start: number) =>
    decodeBatch(items, start, Math.min(items.length, start + batchSize), preprocessing);
  let pending = items.length > 0 ? decodeAt(0) : undefined;
  await withInferenceNetwork(model, async (network) => {
    for (let start = 0; start < items.length; start += batchSize) {
      const decoded = await pending!;
      pending = start + batchSize < items.length ? decodeAt(start + batchSize) : undefined;
      const good = decoded.filter((d): d is { index: number; image: Uint8Array } => 'image' in d);
      for (const d of decoded) if ('error' in d) results[d.index] = { file: items[d.index].file, error: d.error };
      if (good.length > 0) {
        const x = new Float32Array(good.length * pixels);
        good.forEach((d, slot) => scaleToUnit(d.image, x, slot * pixels));
        const probs = await batchProbabilities(tf, network, x, good.length, {
          temperature: metadata.temperature,
          tta: options.tta,
        });
        const classes = classNames.length;
        good.forEach((d, slot) => {
          const row = Array.from(probs.subarray(slot * classes, (slot + 1) * classes));
          if (!row.every(Number.isFinite)) {
            throw new UserError(
              `the model gives non-finite probabilities for ${items[d.index].file}; it probably diverged, train it again`,
              1,
            );
          }
          const label = classOf(row);
          results[d.index] = {
            file: items[d.index].file,
            label: classNames[label],
            probability: row[label],
            probabilities: row,
          };
        });
      }
      options.onProgress?.(Math.min(items.length, start + batchSize), items.length);
    }
  });
  return results;
}

/**
 * The slide's figures over the images that were classified: cells, cells of the positive class of `labels` (the
 * model's), parasitemia at `threshold`.
 */
export function slideSummary(results: readonly FileResult[], labels: ClassLabels, threshold: number): SlideSummary {
  const positiveIndex = positiveIndexOf(labels);
  const pPositive = results.filter((r): r is ClassifiedFile => !isFailed(r)).map((r) => r.probabilities[positiveIndex]);
  return summariseSlide(pPositive, threshold);
}
