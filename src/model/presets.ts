// Named training recipes for `train --preset`: `tutorial` is the Keras tutorial's (the defaults), `laptop` a
// recipe sized for CPU training (13 minutes on 2 cores for the per-patient split of 12,000 images), `laptop-long`
// the same for 13 epochs instead of 11 (14 minutes, 0.25 points more cross-validated accuracy). A flag given on the
// command line overrides the preset's value for that setting. A preset chooses part of a run's recipe (recipe.ts).
import { TRAIN_DEFAULTS } from '../config.js';
import type { ResizeMethod } from '../input/resize.js';
import type { StainMethod } from '../input/stain.js';
import type { ScheduleName } from './schedule.js';

/** The settings a preset chooses; every one of them is also a flag of `train` and `crossval`. */
export interface PresetSettings {
  epochs: number;
  batchSize: number;
  /** The learning rate at the end of any warm-up, the start of the schedule's fall. */
  lr: number;
  imageSize: number;
  /** How cells are brought to imageSize; saved with the model, so every later use resizes the same way. */
  resize: ResizeMethod;
  /** What is done to each cell's colours after the resize (input/stain.ts); saved with the model like resize. */
  stain: StainMethod;
  stages: number[];
  filters: number[];
  /** How the rate falls after any warm-up. */
  schedule: ScheduleName;
  /** Epochs of linear warm-up. */
  warmup: number;
  /** The targets are (1 - s) * one-hot + s / classes (0: plain one-hot). */
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

// The same recipe in 11 epochs (the linear decay compressed): chosen on a 5-fold cross-validation over patients
// (BENCHMARKS.md, "Fewer epochs"), within 0.3 points of the 13 epochs' pooled balanced accuracy in 11/13 of the
// time: 13 minutes on 2 cores.
const LAPTOP = {
  epochs: 11,
  batchSize: 32,
  lr: 0.1,
  imageSize: 48,
  resize: 'nearest',
  stain: 'keep',
  stages: [2, 3, 4],
  filters: [16, 32, 64, 128],
  schedule: 'linear',
  warmup: 0,
  labelSmoothing: 0.1,
  l2: 1e-4,
  ema: 0,
  rotation: 180,
  color: 0.1,
} as const satisfies PresetSettings;

export const PRESETS = {
  tutorial: {
    epochs: TRAIN_DEFAULTS.epochs,
    batchSize: TRAIN_DEFAULTS.batchSize,
    lr: TRAIN_DEFAULTS.lr,
    imageSize: TRAIN_DEFAULTS.imageSize,
    resize: TRAIN_DEFAULTS.resize,
    stain: TRAIN_DEFAULTS.stain,
    stages: [...TRAIN_DEFAULTS.stages],
    filters: [...TRAIN_DEFAULTS.filters],
    schedule: TRAIN_DEFAULTS.schedule,
    warmup: TRAIN_DEFAULTS.warmup,
    labelSmoothing: TRAIN_DEFAULTS.labelSmoothing,
    l2: TRAIN_DEFAULTS.l2,
    ema: TRAIN_DEFAULTS.ema,
    rotation: TRAIN_DEFAULTS.rotation,
    color: TRAIN_DEFAULTS.color,
  },
  laptop: LAPTOP,
  // The laptop preset until 2026-12-06: 13 epochs, 14.4 minutes on 2 cores with that day's kernels (28 before), and
  // 0.25 points more pooled cross-validated balanced accuracy than `laptop` (95.4% against 95.2%).
  // Measured on the 12,000-image per-patient split (BENCHMARKS.md, "Accuracy for new patients"): 28 minutes of
  // `train` on 2 cores (wasm, 2 threads, whole batches of 32; 33-38 in micro-batches of 8 before wasm chose by
  // memory). Of the recipes tried, chosen on the validation patients: this net at 48x48 for 13 epochs beat a
  // shallower one at 64x64 for 10, and 16 epochs did no better than 13; rotations of any angle and per-channel
  // colour factors helped; label smoothing 0.1 raised validation for both seeds tried, and a fifth of the tutorial's
  // weight decay (--l2 1e-4) raised it for one seed and tied for the other (this small net under-fits its augmented
  // images in 13 epochs); the moving average of the weights (--ema 0.998) did not, so it stays off; nor did the area
  // resize (--resize area) or a cosine schedule with warm-up.
  'laptop-long': { ...LAPTOP, epochs: 13 },
} as const satisfies Record<string, PresetSettings>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
export const DEFAULT_PRESET: PresetName = 'tutorial';

/** The settings a preset chooses, in the order they are printed and stored. */
export const PRESET_KEYS = Object.keys(PRESETS.tutorial) as (keyof PresetSettings)[];

/** `flags` with every preset setting not given on the command line taken from the preset. */
export function withPreset<T extends PresetSettings>(flags: T, name: PresetName, given: (key: string) => boolean): T {
  const preset: PresetSettings = PRESETS[name];
  const resolved = { ...flags };
  for (const key of PRESET_KEYS) {
    if (!given(key))
      (resolved as PresetSettings)[key] = (
        Array.isArray(preset[key]) ? [...(preset[key] as number[])] : preset[key]
      ) as never;
  }
  return resolved;
}

/** The flag that sets a recipe's `key`: labelSmoothing -> --label-smoothing. */
export const flagName = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
/** A setting's value as its flag takes it: lists comma-separated. */
export const flagValue = (value: unknown): string => (Array.isArray(value) ? value.join(',') : String(value));

/** "preset laptop: --epochs 13 --batch-size 32 ...; changed by flags: --epochs 2", the recipe a run follows. */
export function formatPreset(name: PresetName, flags: PresetSettings): string {
  const preset: PresetSettings = PRESETS[name];
  const settings = PRESET_KEYS.map((key) => `${flagName(key)} ${flagValue(preset[key])}`).join(' ');
  const changed = PRESET_KEYS.filter((key) => flagValue(flags[key]) !== flagValue(preset[key]));
  const note = changed.length
    ? `; changed by flags: ${changed.map((key) => `${flagName(key)} ${flagValue(flags[key])}`).join(' ')}`
    : '';
  return `preset ${name}: ${settings}${note}`;
}
