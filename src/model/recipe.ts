// What a training run is: its recipe, every setting that defines the run, saved whole in the run's checkpoint so
// `train --resume` reads it back; and the checks a recipe passes, shared by the flags' parsers (each range as the
// flag is read) and by callers that build a recipe in code (crossval's folds, tests).
import { TRAIN_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import type { CheckpointExclusion } from '../input/exclude-list.js';
import { PRESET_KEYS, type PresetName, type PresetSettings } from './presets.js';

/**
 * Everything that defines a training run: a preset's settings as the flags changed them, the seed, the momentum,
 * and what the run trains on (the positive class, the files --exclude leaves out). Where the run reads and writes
 * and how this process computes a step (backend, micro-batch) are not part of it: they may differ on a resume.
 */
export interface TrainRecipe extends PresetSettings {
  /** The preset the settings started from. */
  preset: PresetName;
  /** Seeds the weights, the shuffles and the augmentation. */
  seed: number;
  /** Of the SGD optimizer; no flag sets it (the tutorial's 0.9). */
  momentum: number;
  /** The class a two-class model screens for (`--positive`), recorded in metadata.json; absent: none. */
  positive?: string;
  /** `train --exclude`: the list (by sha256) and how many training images it left out; absent: none. */
  excluded?: CheckpointExclusion;
}

/** The recipe as the flags of `train` and `crossval` give it: all but the momentum and the exclusion (a list's). */
export type RecipeFlags = Omit<TrainRecipe, 'momentum' | 'excluded'>;

/** The recipe's settings that are flags but not a preset's; the type insists on every one. */
const RUN_FLAGS: Record<Exclude<keyof RecipeFlags, keyof PresetSettings>, true> = {
  seed: true,
  preset: true,
  positive: true,
};
/** Every recipe setting a flag gives, in the order a recipe is stored. */
export const RECIPE_FLAGS = [...PRESET_KEYS, ...Object.keys(RUN_FLAGS)] as (keyof RecipeFlags)[];

/** The recipe in `flags` (which may hold other options too), with the momentum no flag sets. */
export function recipeOf(flags: RecipeFlags): TrainRecipe {
  const recipe: Record<string, unknown> = {};
  for (const key of RECIPE_FLAGS) {
    const value = flags[key];
    if (value !== undefined) recipe[key] = Array.isArray(value) ? [...(value as number[])] : value;
  }
  return { ...(recipe as unknown as RecipeFlags), momentum: TRAIN_DEFAULTS.momentum };
}

/** The range of each setting beyond what its flag's parser reads (a whole number above 0, a number 0 or more). */
const RANGES = {
  imageSize: [(n: number) => n >= 8, '--image-size must be at least 8'],
  rotation: [
    (n: number) => n >= 0 && n <= 180,
    '--rotation must be between 0 and 180 degrees (180 turns the images every way)',
  ],
  color: [(n: number) => n >= 0 && n < 1, '--color must be at least 0 and below 1, for example 0.1'],
  labelSmoothing: [(n: number) => n >= 0 && n < 1, '--label-smoothing must be at least 0 and below 1, for example 0.1'],
  l2: [(n: number) => n < 0.1, '--l2 must be below 0.1 (the tutorial uses 0.0005; 0 turns the penalty off)'],
  ema: [
    (n: number) => n === 0 || (n > 0 && n < 1),
    '--ema must be 0 (off) or a decay between 0 and 1, for example 0.999',
  ],
} as const satisfies Partial<Record<keyof PresetSettings, readonly [(n: number) => boolean, string]>>;

export type RangedSetting = keyof typeof RANGES;

/** `value` when it lies in the range of `key`'s setting; otherwise one line naming the flag and its range. */
export function inRange(key: RangedSetting, value: number): number {
  const [ok, message] = RANGES[key];
  if (!ok(value)) throw new UserError(message);
  return value;
}

/** --stages and --filters describe one ResNet: the stem's filters, then one count per stage, each a multiple of 4. */
export function checkArchitectureFlags(flags: { stages: number[]; filters: number[] }): void {
  if (flags.filters.length !== flags.stages.length + 1) {
    throw new UserError(
      `--filters needs ${flags.stages.length + 1} numbers (the stem, then one per stage of --stages ${flags.stages.join(',')}), got ${flags.filters.length}`,
    );
  }
  if (flags.filters.slice(1).some((k) => k % 4 !== 0)) {
    throw new UserError('--filters of the stages must be multiples of 4 (the bottleneck uses K/4 filters)');
  }
}

/**
 * The checks of a recipe, after any preset filled it in: every setting's range (the flags' parsers check the same
 * as they read a flag; a recipe built in code meets them here), then the settings that must agree with each other.
 */
export function checkRecipe(recipe: PresetSettings): void {
  for (const key of Object.keys(RANGES) as RangedSetting[]) inRange(key, recipe[key]);
  checkArchitectureFlags(recipe);
  if (recipe.warmup >= recipe.epochs)
    throw new UserError(
      `--warmup ${recipe.warmup} leaves no epoch to train at the full rate: use fewer than --epochs ${recipe.epochs}`,
    );
}
