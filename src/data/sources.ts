// The three split sources a training run reads, sharing one image cache.
import path from 'node:path';
import { DATASET_DEFAULTS } from '../config.js';
import { TUTORIAL_AUGMENTATION } from './augment.js';
import { createBatchSource, type ImageBatchSource, type SkippedImage } from './batches.js';
import { ImageCache } from './image-cache.js';
import type { ResizeMethod } from './resize.js';
import type { StainMethod } from './stain.js';

export interface SplitSources {
  train: ImageBatchSource;
  val: ImageBatchSource;
  test: ImageBatchSource;
}

export interface SplitSourceOptions {
  data: string;
  imageSize: number;
  /** How cells are resized to imageSize (default nearest, the tutorial's). */
  resize?: ResizeMethod;
  /** What is done to each cell's colours after the resize (default keep, the tutorial's). */
  stain?: StainMethod;
  batchSize: number;
  seed: number;
  /** Degrees of the training images' random rotation (Keras' rotation_range); default: the tutorial's 20. */
  rotation?: number;
  /** Range of the training images' random channel factors (augment.ts channelGainRange); default 0, off. */
  color?: number;
  /** Called once per image that cannot be decoded (it is left out of its epochs). */
  onSkip?: (skipped: SkippedImage) => void;
}

/** Training (shuffled, augmented), validation and testing (file order, resized and scaled only). */
export async function openSplitSources(options: SplitSourceOptions): Promise<SplitSources> {
  const { data, imageSize, resize, stain, batchSize, seed, onSkip } = options;
  const augmentation = {
    ...TUTORIAL_AUGMENTATION,
    rotationRange: options.rotation ?? TUTORIAL_AUGMENTATION.rotationRange,
    channelGainRange: options.color ?? 0,
  };
  const cache = new ImageCache();
  const splitDir = (name: string) => path.join(data, name);
  const train = await createBatchSource({
    dir: splitDir(DATASET_DEFAULTS.splits.train),
    imageSize,
    resize,
    stain,
    batchSize,
    augment: true,
    augmentation,
    shuffle: true,
    seed,
    cache,
    onSkip,
  });
  // Validation and test use the training split's class order, so labels mean the same everywhere.
  const evaluation = (name: string) =>
    createBatchSource({
      dir: splitDir(name),
      imageSize,
      resize,
      stain,
      batchSize,
      augment: false,
      shuffle: false,
      seed,
      cache,
      onSkip,
      classNames: train.classNames,
    });
  return {
    train,
    val: await evaluation(DATASET_DEFAULTS.splits.val),
    test: await evaluation(DATASET_DEFAULTS.splits.test),
  };
}
