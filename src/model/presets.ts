// Named training recipes for `train --preset`: `tutorial` is the Keras tutorial's (the defaults), `laptop` a
// recipe sized for about 40 minutes of CPU training on the per-patient split of 12,000 images. A flag given on the
// command line overrides the preset's value for that setting.
import { TRAIN_DEFAULTS } from '../config.js';
import type { TrainRecipe } from './recipe.js';

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
  // Measured on the 12,000-image per-patient split (BENCHMARKS.md, "Accuracy for new patients"): 28 minutes of
  // `train` on 2 cores (wasm, 2 threads, whole batches of 32; 33-38 in micro-batches of 8 before wasm chose by
  // memory). Of the recipes tried, chosen on the validation patients: this net at 48x48 for 13 epochs beat a
  // shallower one at 64x64 for 10, and 16 epochs did no better than 13; rotations of any angle and per-channel
  // colour factors helped; label smoothing 0.1 raised validation for both seeds tried, and a fifth of the tutorial's
  // weight decay (--l2 1e-4) raised it for one seed and tied for the other (this small net under-fits its augmented
  // images in 13 epochs); the moving average of the weights (--ema 0.998) did not, so it stays off; nor did the area
  // resize (--resize area) or a cosine schedule with warm-up.
  laptop: {
    epochs: 13,
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
  },
} as const satisfies Record<string, TrainRecipe>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
export const DEFAULT_PRESET: PresetName = 'tutorial';

const RECIPE_KEYS = Object.keys(PRESETS.tutorial) as (keyof TrainRecipe)[];

/** `flags` with every recipe setting not given on the command line taken from the preset. */
export function withPreset<T extends TrainRecipe>(flags: T, name: PresetName, given: (key: string) => boolean): T {
  const preset: TrainRecipe = PRESETS[name];
  const resolved = { ...flags };
  for (const key of RECIPE_KEYS) {
    if (!given(key))
      (resolved as TrainRecipe)[key] = (
        Array.isArray(preset[key]) ? [...(preset[key] as number[])] : preset[key]
      ) as never;
  }
  return resolved;
}

const flagName = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
const shown = (value: string | number | readonly number[]): string =>
  Array.isArray(value) ? value.join(',') : String(value);

/** "preset laptop: --epochs 13 --batch-size 32 ...; changed by flags: --epochs 2", the recipe a run follows. */
export function formatPreset(name: PresetName, flags: TrainRecipe): string {
  const preset: TrainRecipe = PRESETS[name];
  const settings = RECIPE_KEYS.map((key) => `${flagName(key)} ${shown(preset[key])}`).join(' ');
  const changed = RECIPE_KEYS.filter((key) => shown(flags[key]) !== shown(preset[key]));
  const note = changed.length
    ? `; changed by flags: ${changed.map((key) => `${flagName(key)} ${shown(flags[key])}`).join(' ')}`
    : '';
  return `preset ${name}: ${settings}${note}`;
}
