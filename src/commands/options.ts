// The option vocabulary of the commands: the parsers (each throws commander's InvalidArgumentError with the fix in
// words, which commander prints as one line, exit 2) and one factory per option that several commands share, so a
// flag has one spelling, one help text, one default and one validation. The flags' TypeScript types come from these
// definitions (@commander-js/extra-typings), not from hand-written interfaces.
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { DATASET_DEFAULTS, TRAIN_DEFAULTS } from '../config.js';
import { BACKEND_CHOICES, type BackendChoice } from '../tf.js';

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

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError('must be a number, 0 or more.');
  }
  return n;
}

/** A comma-separated list of positive whole numbers, such as "3,4,6". */
export function intList(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) <= 0)) {
    throw new InvalidArgumentError('must be a comma-separated list of whole numbers greater than 0, such as 3,4,6.');
  }
  return parts.map(Number);
}

/** --threshold: a probability in [0, 1] (0 flags every image, 1 only certain ones). */
export function thresholdValue(value: string): number {
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

/** A TCP port; 0 lets the system pick a free one. */
export function portNumber(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n > 65_535)
    throw new InvalidArgumentError('must be a port number from 0 to 65535 (0 picks a free port).');
  return n;
}

/** --backend: the TensorFlow.js backend, one of BACKEND_CHOICES (tf.ts owns the list). */
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
    .argParser(positiveInt)
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

/** --threshold: where a two-class model decides Parasitized. */
export const thresholdOption = () =>
  new Option(
    '--threshold <p>',
    'Parasitized when P(Parasitized) >= p (default: the one saved with the model, else 0.5)',
  ).argParser(thresholdValue);

/** --tta: test-time augmentation over the 8 flips and right-angle rotations. */
export const ttaOption = () =>
  new Option(
    '--tta',
    "test-time augmentation: average each image's probabilities over its 8 flips and right-angle rotations (8x slower)",
  );

/** --json: stdout holds `what` and nothing else (notes and progress still go to stderr). */
export const jsonOption = (what: string) => new Option('--json', `print ${what} and nothing else`);
