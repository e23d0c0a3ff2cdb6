// The three sources a training run reads (training, validation, testing), sharing one image cache: from the split
// folders build-dataset writes, or from explicit lists of labelled files (crossval's folds, which are never copied).
import path from 'node:path';
import { DATASET_DEFAULTS } from '../config.js';
import { TUTORIAL_AUGMENTATION } from './augment.js';
import {
  batchSourceFromListing,
  createBatchSource,
  type BatchPipelineOptions,
  type ImageBatchSource,
  type SkippedImage,
} from './batches.js';
import { listSplit, type SplitListing } from './split-folder.js';
import { ImageCache } from './image-cache.js';
import type { Preprocessing } from './preprocessing.js';
import type { LabelledFile } from './types.js';

export interface SplitSources {
  train: ImageBatchSource;
  val: ImageBatchSource;
  test: ImageBatchSource;
}

/** How the sources decode, augment and batch their images. */
export interface SourcePipelineOptions {
  /** How a cell becomes the network's input (the recipe's, or a saved model's). */
  preprocessing: Preprocessing;
  batchSize: number;
  seed: number;
  /** Degrees of the training images' random rotation (Keras' rotation_range); default: the tutorial's 20. */
  rotation?: number;
  /** Range of the training images' random channel factors (augment.ts channelGainRange); default 0, off. */
  color?: number;
  /** Called once per image that cannot be decoded (it is left out of its epochs). */
  onSkip?: (skipped: SkippedImage) => void;
  /** The decoded images' cache, shared by the three sources (default: a new one of 1 GiB). */
  cache?: ImageCache;
}

export interface SplitSourceOptions extends SourcePipelineOptions {
  data: string;
  /** Picks training files to leave out (`train --exclude`), by path; validation and testing are never filtered. */
  excludeFromTraining?: (listing: SplitListing) => Promise<ReadonlySet<string>>;
}

/** What training reads when it does not read split folders: each split's files with their labels. */
export interface FileLists {
  /** Label i is classNames[i], in every list. */
  classNames: readonly string[];
  train: readonly LabelledFile[];
  val: readonly LabelledFile[];
  test: readonly LabelledFile[];
}

/** Training (shuffled, augmented) and evaluation (file order, resized and scaled only) pipelines, one cache. */
function pipelines(options: SourcePipelineOptions): {
  training: BatchPipelineOptions;
  evaluation: BatchPipelineOptions;
} {
  const { preprocessing, batchSize, seed, onSkip } = options;
  const augmentation = {
    ...TUTORIAL_AUGMENTATION,
    rotationRange: options.rotation ?? TUTORIAL_AUGMENTATION.rotationRange,
    channelGainRange: options.color ?? 0,
  };
  const cache = options.cache ?? new ImageCache();
  const shared = { preprocessing, batchSize, seed, cache, onSkip };
  return {
    training: { ...shared, augment: true, augmentation, shuffle: true },
    evaluation: { ...shared, augment: false, shuffle: false },
  };
}

/** The split folders `<data>/{training,validation,testing}/<Class>/`. */
export async function openSplitSources(options: SplitSourceOptions): Promise<SplitSources> {
  const { training, evaluation } = pipelines(options);
  const splitDir = (name: string) => path.join(options.data, name);
  const listing = await listSplit(splitDir(DATASET_DEFAULTS.splits.train));
  const excluded = (await options.excludeFromTraining?.(listing)) ?? new Set<string>();
  const train = batchSourceFromListing(
    { ...listing, files: listing.files.filter((file) => !excluded.has(file.path)) },
    training,
  );
  // Validation and test use the training split's class order, so labels mean the same everywhere.
  const evaluate = (name: string) =>
    createBatchSource({ ...evaluation, dir: splitDir(name), classNames: train.classNames });
  return {
    train,
    val: await evaluate(DATASET_DEFAULTS.splits.val),
    test: await evaluate(DATASET_DEFAULTS.splits.test),
  };
}

/** Explicit file lists, read where the files lie (nothing is listed or copied); evaluation keeps each list's order. */
export function openListSources(lists: FileLists, options: SourcePipelineOptions): SplitSources {
  const { training, evaluation } = pipelines(options);
  const source = (files: readonly LabelledFile[], pipeline: BatchPipelineOptions) =>
    batchSourceFromListing(
      { classNames: [...lists.classNames], files: [...files], nonImages: [], rejected: [] },
      pipeline,
    );
  return {
    train: source(lists.train, training),
    val: source(lists.val, evaluation),
    test: source(lists.test, evaluation),
  };
}
