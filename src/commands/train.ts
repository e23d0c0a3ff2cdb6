// `malaria train`: the tutorial's ResNet on <data>/training, validated on <data>/validation, reported on <data>/testing.
// The work is runTraining (src/model/run-training.ts); this file declares the flags and handles Ctrl-C.
import { Option, type Command } from '@commander-js/extra-typings';
import { DATASET_DEFAULTS, TRAIN_DEFAULTS } from '../config.js';
import { RESIZE_METHODS, type ResizeMethod } from '../data/resize.js';
import { STAIN_METHODS, type StainMethod } from '../data/stain.js';
import { abortOnInterrupt } from '../io/interrupt.js';
import { DEFAULT_PRESET, PRESET_NAMES, type PresetName } from '../model/presets.js';
import { runTraining } from '../model/run-training.js';
import { SCHEDULES, type ScheduleName } from '../model/schedule.js';
import { createReporter } from '../report/reporter.js';
import {
  backendOption,
  batchSizeOption,
  dataOption,
  filtersOption,
  imageSizeOption,
  modelDirOption,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  stagesOption,
} from './options.js';

/** The `train` command with its flags; their types come from these definitions. */
function declareTrain(program: Command) {
  return program
    .command('train')
    .description(
      'train the ResNet on <data>/training (validating on <data>/validation), save it, report on <data>/testing',
    )
    .addOption(
      new Option('--preset <name>', 'training recipe; the flags below override its settings')
        .choices(PRESET_NAMES)
        .default<PresetName>(DEFAULT_PRESET),
    )
    .addOption(dataOption())
    .addOption(modelDirOption('write'))
    .option('--plot <png>', 'loss/accuracy plot to write', TRAIN_DEFAULTS.plot as string)
    .option('--epochs <n>', 'epochs to train', positiveInt, TRAIN_DEFAULTS.epochs as number)
    .addOption(batchSizeOption('training'))
    .option(
      '--micro-batch <n>',
      `images per forward/backward pass; a batch's gradients are summed over its micro-batches (default: the batch, on wasm halved until it fits its 4 GB: 8 for the tutorial's ResNet)`,
      positiveInt,
    )
    .option('--lr <f>', 'initial learning rate (decays linearly to 0)', positiveNumber, TRAIN_DEFAULTS.lr as number)
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
      nonNegativeNumber,
      TRAIN_DEFAULTS.labelSmoothing as number,
    )
    .option(
      '--l2 <f>',
      "L2 penalty on every kernel, f * sum(w^2) (the tutorial's weight decay; 0: off)",
      nonNegativeNumber,
      TRAIN_DEFAULTS.l2 as number,
    )
    .option(
      '--ema <decay>',
      'save a moving average of the weights, updated each step with this decay, as the model (0: the last weights)',
      nonNegativeNumber,
      TRAIN_DEFAULTS.ema as number,
    )
    .option(
      '--rotation <degrees>',
      'training images are rotated by a random angle in [-degrees, degrees] (cells have no orientation: 180 covers all)',
      nonNegativeNumber,
      TRAIN_DEFAULTS.rotation as number,
    )
    .option(
      '--color <f>',
      "each channel of a training image is multiplied by a random factor in [1 - f, 1 + f], like slides' stains and lighting (0: off)",
      nonNegativeNumber,
      TRAIN_DEFAULTS.color as number,
    )
    .option(
      '--seed <n>',
      'seed for weights, shuffling and augmentation',
      nonNegativeInt,
      DATASET_DEFAULTS.seed as number,
    )
    .addOption(backendOption())
    .option('--resume', 'continue the interrupted run in --model-dir from its last completed epoch')
    .option('--force', 'replace a model already in --model-dir');
}

type TrainFlags = ReturnType<ReturnType<typeof declareTrain>['opts']>;

export function registerTrain(program: Command): void {
  declareTrain(program).action(async (flags, command) => {
    const report = createReporter();
    const given = (key: string) => command.getOptionValueSource(key as keyof TrainFlags) === 'cli';
    const interrupt = () =>
      abortOnInterrupt(() =>
        report.note(
          '\nstopping: the last completed epoch stays saved; continue with `malaria train --resume` (Ctrl-C again to quit at once)',
        ),
      );
    const outcome = await runTraining(flags, { report, given, interrupt });
    if (outcome.stoppedEarly) process.exitCode = 130;
  });
}
