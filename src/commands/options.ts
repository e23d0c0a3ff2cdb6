// The option vocabulary of the commands: the parsers (each throws commander's InvalidArgumentError with the fix in
// words, which commander prints as one line, exit 2) and one factory per option that several commands share, so a
// flag has one spelling, one help text, one default and one validation. A recipe setting's range is its rule in
// model/recipe.ts (inRange), checked here as the flag is read and by checkRecipe for a recipe built in code: the same
// one-line UserError either way. The flags' TypeScript types come from these definitions
// (@commander-js/extra-typings), not from hand-written interfaces.
import { InvalidArgumentError, Option, type Command, type OptionValues } from '@commander-js/extra-typings';
import { DATASET_DEFAULTS, TRAIN_DEFAULTS } from '../config.js';
import { RESIZE_METHODS, type ResizeMethod } from '../input/resize.js';
import { STAIN_METHODS, type StainMethod } from '../input/stain.js';
import { DEFAULT_PRESET, PRESET_NAMES, type PresetName } from '../model/presets.js';
import { inRange, type RangedSetting } from '../model/recipe.js';
import { SCHEDULES, type ScheduleName } from '../model/schedule.js';
import { BACKEND_CHOICES, type BackendChoice } from '../backends/select.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError('must be a whole number greater than 0.');
  }
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('must be a whole number, 0 or more.');
  }
  return n;
}

/** A fraction strictly between 0 and 1. */
export function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n >= 1) {
    throw new InvalidArgumentError('must be a number between 0 and 1 (exclusive), for example 0.8.');
  }
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('must be a number greater than 0.');
  }
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError('must be a number, 0 or more.');
  }
  return n;
}

/** A comma-separated list of positive whole numbers, such as "3,4,6". */
function intList(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) <= 0)) {
    throw new InvalidArgumentError('must be a comma-separated list of whole numbers greater than 0, such as 3,4,6.');
  }
  return parts.map(Number);
}

/** --threshold: a probability in [0, 1] (0 flags every image, 1 only certain ones). */
function thresholdValue(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError('must be a probability between 0 and 1, for example 0.5.');
  }
  return n;
}

/** --target-sensitivity: a fraction in (0, 1]; 1 means every parasitized validation cell must be flagged. */
export function targetSensitivity(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) {
    throw new InvalidArgumentError('must be a number above 0 and at most 1, for example 0.95.');
  }
  return n;
}

/** `parse`, then the range of the recipe setting `key` (a UserError naming the flag, as checkRecipe's). */
const inRangeOf =
  (key: RangedSetting, parse: (value: string) => number) =>
  (value: string): number =>
    inRange(key, parse(value));

/** A TCP port; 0 lets the system pick a free one. */
export function portNumber(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n > 65_535)
    throw new InvalidArgumentError('must be a port number from 0 to 65535 (0 picks a free port).');
  return n;
}

/** --backend: the TensorFlow.js backend, one of BACKEND_CHOICES (src/backends/select.ts owns the list). */
export const backendOption = () =>
  new Option(
    '--backend <name>',
    'TensorFlow.js backend; auto takes the fastest that loads (`malaria backends` lists them)',
  )
    .choices(BACKEND_CHOICES)
    .default<BackendChoice>('auto');

/** --model-dir: the model a command reads, or (train) the folder it writes the model into. */
export const modelDirOption = (use: 'read' | 'write' = 'read') =>
  new Option(
    '--model-dir <dir>',
    use === 'read'
      ? 'folder of the trained (or exported) model'
      : 'where the model, its metadata, history.json and checkpoints go',
  ).default<string>(TRAIN_DEFAULTS.modelDir);

/** --image-size, --stages, --filters: the ResNet's shape (train, backends). */
export const imageSizeOption = () =>
  new Option('--image-size <n>', 'images are resized to n x n')
    .argParser(inRangeOf('imageSize', positiveInt))
    .default<number>(TRAIN_DEFAULTS.imageSize);
export const stagesOption = () =>
  new Option('--stages <list>', 'residual modules per stage')
    .argParser(intList)
    .default<number[]>([...TRAIN_DEFAULTS.stages]);
export const filtersOption = () =>
  new Option('--filters <list>', 'filters of the stem and of each stage')
    .argParser(intList)
    .default<number[]>([...TRAIN_DEFAULTS.filters]);

/** --data: the folder build-dataset wrote the splits into. */
export const dataOption = () =>
  new Option('--data <dir>', 'folder holding the training, validation and testing splits').default<string>(
    DATASET_DEFAULTS.base,
  );

const BATCH_SIZE_HELP = {
  training: 'images per optimizer step',
  inference: 'images per inference batch',
  both: 'images per batch',
} as const;

/** --batch-size: images per optimizer step (train), per inference batch (evaluate, predict), or both (backends). */
export const batchSizeOption = (use: keyof typeof BATCH_SIZE_HELP = 'inference') =>
  new Option('--batch-size <n>', BATCH_SIZE_HELP[use]).argParser(positiveInt).default<number>(TRAIN_DEFAULTS.batchSize);

/** --threshold: where a two-class model decides its positive class (Parasitized). */
export const thresholdOption = () =>
  new Option(
    '--threshold <p>',
    "the model's positive class (Parasitized) when P(it) >= p (default: the one saved with the model, else 0.5)",
  ).argParser(thresholdValue);

/** --positive: the class a two-class model screens for, saved with the model (train). */
export const positiveOption = () =>
  new Option(
    '--positive <class>',
    'the class to screen for: its P is thresholded, its recall is the sensitivity (default: Parasitized when it is one of the two classes); saved with the model',
  );

/** --tta: test-time augmentation over the 8 flips and right-angle rotations. */
export const ttaOption = () =>
  new Option(
    '--tta',
    "test-time augmentation: average each image's probabilities over its 8 flips and right-angle rotations (8x slower)",
  );

/** --json: stdout holds `what` and nothing else (notes and progress still go to stderr). */
export const jsonOption = (what: string) => new Option('--json', `print ${what} and nothing else`);

/** --preset: the training recipe whose settings the recipe flags override (train, crossval). */
export const presetOption = () =>
  new Option('--preset <name>', 'training recipe; the flags below override its settings')
    .choices(PRESET_NAMES)
    .default<PresetName>(DEFAULT_PRESET);

/**
 * The flags of a training run, from --epochs to --backend: one declaration for every command that trains (train,
 * crossval), so each flag has one help text, default and validation there too.
 */
export function addTrainingRunOptions<Args extends unknown[], Opts extends OptionValues, Globals extends OptionValues>(
  command: Command<Args, Opts, Globals>,
) {
  return command
    .option('--epochs <n>', 'epochs to train', positiveInt, TRAIN_DEFAULTS.epochs as number)
    .addOption(batchSizeOption('training'))
    .option(
      '--micro-batch <n>',
      `images per forward/backward pass; a batch's gradients are summed over its micro-batches (default: the batch, on wasm halved until it fits its 4 GB: 8 for the tutorial's ResNet; on a GPU halved when a step runs out of memory)`,
      positiveInt,
    )
    .option(
      '--lr <f>',
      'learning rate after any --warmup, falling towards 0 over the epochs as --schedule says',
      positiveNumber,
      TRAIN_DEFAULTS.lr as number,
    )
    .addOption(imageSizeOption())
    .addOption(
      new Option(
        '--resize <method>',
        'how cells are brought to --image-size: nearest (one source pixel each, the tutorial) or area (the mean of every pixel covered); saved with the model',
      )
        .choices(RESIZE_METHODS)
        .default<ResizeMethod>(TRAIN_DEFAULTS.resize),
    )
    .addOption(
      new Option(
        '--stain <method>',
        "what is done to each cell's colours after the resize: keep them (the tutorial) or balance each cell's mean colour to one reference, so slides stained darker or paler look alike; saved with the model",
      )
        .choices(STAIN_METHODS)
        .default<StainMethod>(TRAIN_DEFAULTS.stain),
    )
    .addOption(stagesOption())
    .addOption(filtersOption())
    .addOption(
      new Option(
        '--schedule <name>',
        'how the rate falls after any warm-up: linear (per epoch, the tutorial) or cosine (per step)',
      )
        .choices(SCHEDULES)
        .default<ScheduleName>(TRAIN_DEFAULTS.schedule),
    )
    .option(
      '--warmup <epochs>',
      'epochs over which the rate climbs from 0 to --lr',
      nonNegativeNumber,
      TRAIN_DEFAULTS.warmup as number,
    )
    .option(
      '--label-smoothing <f>',
      'train towards (1 - f) * the label + f / classes instead of the bare label (0: off)',
      inRangeOf('labelSmoothing', nonNegativeNumber),
      TRAIN_DEFAULTS.labelSmoothing as number,
    )
    .option(
      '--l2 <f>',
      "L2 penalty on every kernel, f * sum(w^2) (the tutorial's weight decay; 0: off)",
      inRangeOf('l2', nonNegativeNumber),
      TRAIN_DEFAULTS.l2 as number,
    )
    .option(
      '--ema <decay>',
      'save a moving average of the weights, updated each step with this decay, as the model (0: the last weights)',
      inRangeOf('ema', nonNegativeNumber),
      TRAIN_DEFAULTS.ema as number,
    )
    .option(
      '--rotation <degrees>',
      'training images are rotated by a random angle in [-degrees, degrees] (cells have no orientation: 180 covers all)',
      inRangeOf('rotation', nonNegativeNumber),
      TRAIN_DEFAULTS.rotation as number,
    )
    .option(
      '--color <f>',
      "each channel of a training image is multiplied by a random factor in [1 - f, 1 + f], like slides' stains and lighting (0: off)",
      inRangeOf('color', nonNegativeNumber),
      TRAIN_DEFAULTS.color as number,
    )
    .option(
      '--seed <n>',
      'seed for weights, shuffling and augmentation',
      nonNegativeInt,
      DATASET_DEFAULTS.seed as number,
    )
    .addOption(backendOption());
}
