// The state.json of checkpoints written before the recipe was saved whole (version 1): the run's `settings` for the
// training loop, with what else it needed under `run`. A run interrupted under such a version resumes from it, so
// this turns its settings into the recipe: the only mapping between the two, kept for those files alone.
import { TRAIN_DEFAULTS } from '../config.js';
import type { CheckpointExclusion } from '../input/exclude-list.js';
import type { ResizeMethod } from '../input/resize.js';
import type { StainMethod } from '../input/stain.js';
import { isRecord } from './io.js';
import { DEFAULT_PRESET, type PresetName } from './presets.js';
import type { TrainRecipe } from './recipe.js';
import type { ResNetArchitecture } from './resnet.js';
import type { ScheduleName } from './schedule.js';

/** `settings` of a version-1 state.json, as those versions wrote it; a `?` marks what some of them left out. */
export interface Version1Settings {
  epochs: number;
  initialLr: number;
  /** Of the polynomial decay: always 1 (linear). */
  power: number;
  momentum: number;
  schedule?: ScheduleName;
  warmupEpochs?: number;
  labelSmoothing?: number;
  ema?: number;
  seed: number;
  architecture: ResNetArchitecture;
  resize?: ResizeMethod;
  stain?: StainMethod;
  positiveClass?: string;
  run: {
    data: string;
    batchSize: number;
    imageSize: number;
    rotation?: number;
    color?: number;
    backend: string;
    preset?: PresetName;
    excluded?: CheckpointExclusion;
  };
}

const isNumber = (value: unknown): value is number => typeof value === 'number';

/**
 * The recipe of a version-1 checkpoint and the folder its run read, or undefined when `settings` lacks what every
 * version-1 `train` wrote. What a version left out takes the value it resumed with: the tutorial's rotation, no
 * colour factors, the linear schedule without warm-up, smoothing or average, the nearest resize, the colours kept,
 * the tutorial preset (older than presets), no positive class (chosen from the data as a new run's). The micro-batch
 * the first versions stored was the starting process's, not the run's: it is dropped.
 */
export function recipeOfVersion1(settings: unknown): { recipe: TrainRecipe; data?: string } | undefined {
  if (!isRecord(settings) || !isRecord(settings.run) || !isRecord(settings.architecture)) return undefined;
  const { run, architecture } = settings;
  const numbers = [
    settings.epochs,
    settings.initialLr,
    settings.momentum,
    settings.seed,
    architecture.l2,
    run.batchSize,
    run.imageSize,
  ];
  if (!numbers.every(isNumber) || !Array.isArray(architecture.stages) || !Array.isArray(architecture.filters))
    return undefined;
  // Every version-1 run decayed linearly; another power would be a schedule the recipe cannot say.
  if ((settings.power ?? 1) !== 1) return undefined;
  const v1 = settings as unknown as Version1Settings;
  const recipe: TrainRecipe = {
    epochs: v1.epochs,
    batchSize: v1.run.batchSize,
    lr: v1.initialLr,
    imageSize: v1.run.imageSize,
    resize: v1.resize ?? 'nearest',
    stain: v1.stain ?? 'keep',
    stages: v1.architecture.stages,
    filters: v1.architecture.filters,
    schedule: v1.schedule ?? 'linear',
    warmup: v1.warmupEpochs ?? 0,
    labelSmoothing: v1.labelSmoothing ?? 0,
    l2: v1.architecture.l2,
    ema: v1.ema ?? 0,
    rotation: v1.run.rotation ?? TRAIN_DEFAULTS.rotation,
    color: v1.run.color ?? 0,
    seed: v1.seed,
    preset: v1.run.preset ?? DEFAULT_PRESET,
    momentum: v1.momentum,
    ...(v1.positiveClass === undefined ? {} : { positive: v1.positiveClass }),
    ...(v1.run.excluded === undefined ? {} : { excluded: v1.run.excluded }),
  };
  return { recipe, ...(typeof v1.run.data === 'string' ? { data: v1.run.data } : {}) };
}
