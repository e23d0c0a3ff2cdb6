// What a training run is: the recipe a preset chooses (every setting a `train` flag), and the settings a run
// follows and its checkpoint keeps.
import type { ResizeMethod } from '../input/resize.js';
import type { StainMethod } from '../input/stain.js';
import type { ResNetArchitecture } from './resnet.js';
import type { ScheduleName } from './schedule.js';

/** The settings a preset chooses; every one of them is also a `train` flag. */
export interface TrainRecipe {
  epochs: number;
  batchSize: number;
  lr: number;
  imageSize: number;
  /** How cells are brought to imageSize; saved with the model, so every later use resizes the same way. */
  resize: ResizeMethod;
  /** What is done to each cell's colours after the resize (input/stain.ts); saved with the model like resize. */
  stain: StainMethod;
  stages: number[];
  filters: number[];
  schedule: ScheduleName;
  /** Epochs of linear warm-up. */
  warmup: number;
  labelSmoothing: number;
  /** L2 factor on every convolution and dense kernel (the tutorial's 5e-4): the weight decay. */
  l2: number;
  /** Decay of the weights' moving average saved as the model; 0: the last weights. */
  ema: number;
  /** Degrees of random rotation of the training images. */
  rotation: number;
  /** Range of the random per-channel factors of the training images; 0: off. */
  color: number;
}

/**
 * Everything that defines a run; stored in the checkpoint so `resume` continues with the same schedule. How the
 * engine computes a step (the micro-batch size) is not part of it: see TrainOptions.microBatchSize.
 */
export interface TrainSettings {
  epochs: number;
  /** Learning rate of epoch 0; later epochs follow polynomialDecay. */
  initialLr: number;
  /** Exponent of the polynomial decay (the tutorial uses 1: linear). */
  power: number;
  momentum: number;
  /** After any warm-up, the rate follows this (absent in older checkpoints: linear). */
  schedule?: ScheduleName;
  /** Epochs of linear warm-up (absent: 0). */
  warmupEpochs?: number;
  /** The targets are (1 - s) * one-hot + s / classes (absent: 0, plain one-hot). */
  labelSmoothing?: number;
  /** Decay of the moving average of the weights that is saved as the model (absent or 0: the last weights). */
  ema?: number;
  seed: number;
  /** Recorded in metadata.json when the final model is saved. */
  architecture?: ResNetArchitecture;
  /** How the run's images were resized, recorded in metadata.json (absent in older checkpoints: nearest). */
  resize?: ResizeMethod;
  /** What the run did to its cells' colours after the resize, recorded in metadata.json (absent: keep). */
  stain?: StainMethod;
  /** The class a two-class model screens for (`train --positive`), recorded in metadata.json (absent: none). */
  positiveClass?: string;
  /** The caller's own options (data folder, batch size, augmentation...), kept so a resume can rebuild its sources. */
  run?: Record<string, unknown>;
}
