// `malaria train`: the tutorial's ResNet on <data>/training, validated on <data>/validation, reported on <data>/testing.
import { Option, type Command } from '@commander-js/extra-typings';
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_DEFAULTS, TRAIN_DEFAULTS, WASM_MICRO_BATCH } from '../config.js';
import { UserError } from '../errors.js';
import { selectBackend, tf } from '../tf.js';
import { openSplitSources } from '../data/sources.js';
import { buildResNet, resolveArchitecture } from '../model/resnet.js';
import { DivergedError, trainModel, resumeTraining, type TrainSettings, type EpochEndInfo } from '../model/train.js';
import { hasCheckpoint, loadCheckpoint, loadCheckpointState, MODEL_FILE, sweepModelFolder } from '../model/io.js';
import { assertApart, checkOutputFolder, emptyOurFolder } from '../io/output-folder.js';
import { predictProbabilities } from '../model/predict.js';
import { calibrateTemperature } from '../model/calibrate.js';
import { DEFAULT_PRESET, formatPreset, PRESET_NAMES, withPreset, type PresetName } from '../model/presets.js';
import { evaluatePredictions, formatCalibration, formatScreening } from '../report/evaluation.js';
import { formatTemperatureFit } from '../report/calibration.js';
import { formatClassificationReport } from '../report/classification-report.js';
import { asciiChart } from '../report/chart.js';
import { renderTrainingPlot } from '../report/plot.js';
import { ProgressBar } from '../report/progress.js';
import { createReporter } from '../report/reporter.js';
import { epochLine, fraction4, modelLine } from '../report/training-log.js';
import { backendOption, batchSizeOption, dataOption, intList, modelDirOption, nonNegativeInt, positiveInt, positiveNumber } from './options.js';

/** The `train` command with its flags; their types come from these definitions. */
function declareTrain(program: Command) {
  return program
    .command('train')
    .description('train the ResNet on <data>/training (validating on <data>/validation), save it, report on <data>/testing')
    .addOption(
      new Option('--preset <name>', 'training recipe; the flags below override its settings').choices(PRESET_NAMES).default<PresetName>(DEFAULT_PRESET),
    )
    .addOption(dataOption())
    .addOption(modelDirOption('write'))
    .option('--plot <png>', 'loss/accuracy plot to write', TRAIN_DEFAULTS.plot as string)
    .option('--epochs <n>', 'epochs to train', positiveInt, TRAIN_DEFAULTS.epochs as number)
    .addOption(batchSizeOption('training'))
    .option('--micro-batch <n>', `images per forward/backward pass; a batch's gradients are summed over its micro-batches (default: ${WASM_MICRO_BATCH} on wasm, else the batch size)`, positiveInt)
    .option('--lr <f>', 'initial learning rate (decays linearly to 0)', positiveNumber, TRAIN_DEFAULTS.lr as number)
    .option('--image-size <n>', 'images are resized to n x n', positiveInt, TRAIN_DEFAULTS.imageSize as number)
    .option('--stages <list>', 'residual modules per stage', intList, [...TRAIN_DEFAULTS.stages] as number[])
    .option('--filters <list>', 'filters of the stem and of each stage', intList, [...TRAIN_DEFAULTS.filters] as number[])
    .option('--seed <n>', 'seed for weights, shuffling and augmentation', nonNegativeInt, DATASET_DEFAULTS.seed as number)
    .addOption(backendOption())
    .option('--resume', 'continue the interrupted run in --model-dir from its last completed epoch')
    .option('--force', 'replace a model already in --model-dir');
}

type TrainFlags = ReturnType<ReturnType<typeof declareTrain>['opts']>;

export function registerTrain(program: Command): void {
  declareTrain(program).action((flags, command) => runTrain(flags, (key) => command.getOptionValueSource(key) === 'cli'));
}

function validate(flags: TrainFlags): void {
  if (flags.filters.length !== flags.stages.length + 1) {
    throw new UserError(`--filters needs ${flags.stages.length + 1} numbers (the stem, then one per stage of --stages ${flags.stages.join(',')}), got ${flags.filters.length}`);
  }
  if (flags.filters.slice(1).some((k) => k % 4 !== 0)) {
    throw new UserError('--filters of the stages must be multiples of 4 (the bottleneck uses K/4 filters)');
  }
  if (flags.imageSize < 8) throw new UserError('--image-size must be at least 8');
  if (flags.resume && flags.force) throw new UserError('--resume and --force contradict each other: pass one of them');
}

function checkData(flags: TrainFlags): void {
  if (!fs.existsSync(flags.data)) {
    throw new UserError(`data folder ${flags.data} not found: run \`malaria build-dataset\` first, or pass --data`);
  }
}

const formatFlag = (value: unknown): string => (Array.isArray(value) ? value.join(',') : String(value));

/**
 * `--resume` continues the checkpointed run as it was: same image size, batch, seed (so the same shuffles),
 * epochs, learning-rate schedule and architecture, and its data folder unless --data is given (the folder may have
 * moved). Flags may repeat those values; a different value is refused rather than silently ignored. The
 * micro-batch is not among them: it is chosen for the backend the run resumes on (or by --micro-batch).
 */
async function resumedFlags(flags: TrainFlags, given: (key: string) => boolean): Promise<TrainFlags> {
  const { settings } = await loadCheckpointState(flags.modelDir);
  const run = settings.run ?? {};
  const saved: Partial<Record<keyof TrainFlags, unknown>> = {
    data: run.data,
    imageSize: run.imageSize,
    batchSize: run.batchSize,
    epochs: settings.epochs,
    lr: settings.initialLr,
    seed: settings.seed,
    stages: settings.architecture?.stages,
    filters: settings.architecture?.filters,
    preset: run.preset,
  };
  const resumed: Record<string, unknown> = { ...flags };
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined || (key === 'data' && given(key))) continue;
    const option = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    const mine = flags[key as keyof TrainFlags];
    if (given(key) && formatFlag(mine) !== formatFlag(value)) {
      throw new UserError(`${option} ${formatFlag(mine)} differs from the interrupted run's ${formatFlag(value)}: resume with the same flags, or leave ${option} out`);
    }
    resumed[key] = value;
  }
  return resumed as unknown as TrainFlags;
}

/** Where a diverged run stands and what to do: the checkpoint before it (if any) is untouched. */
function divergedError(err: DivergedError, flags: TrainFlags): UserError {
  const lower = Number((flags.lr / 10).toPrecision(2));
  const kept =
    err.epoch > 0
      ? `, with --force to start over; the checkpoint of epoch ${err.epoch} in ${flags.modelDir} is kept`
      : '; no epoch completed, so nothing was saved';
  return new UserError(`${err.message} than ${flags.lr}, such as --lr ${lower}${kept}`, 1);
}

/**
 * --model-dir must be apart from the splits it reads (and so must --plot), and may be replaced by --force only when
 * it is empty or one of our model folders (src/io/output-folder.ts). Leftovers of killed runs are cleaned first.
 */
async function checkModelDir(flags: TrainFlags): Promise<void> {
  const splits = Object.values(DATASET_DEFAULTS.splits).map((split) => ({ path: path.join(flags.data, split), label: `the ${split} split of --data ${flags.data}` }));
  await assertApart([{ path: flags.modelDir, label: `--model-dir ${flags.modelDir}` }, { path: flags.plot, label: `--plot ${flags.plot}` }], splits);
  await sweepModelFolder(flags.modelDir);
  await checkOutputFolder(flags.modelDir, 'model', `--model-dir ${flags.modelDir}`);
  const checkpointed = await hasCheckpoint(flags.modelDir);
  if (flags.resume) {
    if (!checkpointed) throw new UserError(`nothing to resume: ${flags.modelDir} holds no checkpoint; run without --resume`);
    return;
  }
  if (flags.force) return;
  if (checkpointed || fs.existsSync(path.join(flags.modelDir, MODEL_FILE))) {
    throw new UserError(`${flags.modelDir} already holds a model: pass --force to replace it, --resume to continue its run, or choose another --model-dir`);
  }
}

async function runTrain(flags: TrainFlags, given: (key: string) => boolean): Promise<void> {
  // A resumed run takes its recipe from its checkpoint instead.
  if (!flags.resume) flags = withPreset(flags, flags.preset, given);
  validate(flags);
  await checkModelDir(flags);
  if (flags.resume) flags = await resumedFlags(flags, given);
  checkData(flags);
  const report = createReporter();
  const backend = await selectBackend(flags.backend);
  report.note(backend.message);
  report.result(formatPreset(flags.preset, flags));

  const skippedFiles: string[] = [];
  const sources = await openSplitSources({
    data: flags.data,
    imageSize: flags.imageSize,
    batchSize: flags.batchSize,
    seed: flags.seed,
    onSkip: (s) => skippedFiles.push(`${s.path} (${s.reason})`),
  });
  const { train, val, test } = sources;
  report.result(
    `found ${train.files.length} training, ${val.files.length} validation and ${test.files.length} testing images in ${train.classNames.length} classes (${train.classNames.join(', ')})`,
  );
  if (val.files.length === 0) throw new UserError(`${flags.data}/${DATASET_DEFAULTS.splits.val} holds no images: rebuild the splits with \`malaria build-dataset\``);

  const microBatch = flags.microBatch ?? (backend.name === 'wasm' ? WASM_MICRO_BATCH : flags.batchSize);
  if (microBatch < flags.batchSize) {
    report.result(
      `batch ${flags.batchSize} is trained as ${Math.ceil(flags.batchSize / microBatch)} micro-batches of ${microBatch} with summed gradients (one optimizer step per batch; batch norm sees ${microBatch} images at a time)`,
    );
  }

  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    report.note('\nstopping: the last completed epoch stays saved; continue with `malaria train --resume` (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  let bar: ProgressBar | undefined;
  // The bar appears after the first batch; its clock starts with the epoch so the first ETA is not zero.
  let epochStartedAt = Date.now();
  let epochs = flags.epochs;
  const callbacks = {
    modelDir: flags.modelDir,
    microBatchSize: microBatch,
    signal: controller.signal,
    onBatchEnd: (info: { epoch: number; batch: number; batches: number; loss: number; accuracy: number }) => {
      bar ??= report.progress({ total: info.batches, label: `Epoch ${info.epoch + 1}/${epochs}`, startedAt: epochStartedAt });
      bar.update(info.batch + 1, `loss: ${fraction4(info.loss)} - accuracy: ${fraction4(info.accuracy)}`);
    },
    onEpochEnd: (info: EpochEndInfo) => {
      bar?.finish();
      bar = undefined;
      report.result(epochLine(info, epochs));
      epochStartedAt = Date.now();
    },
  };

  let result;
  let model: tf.LayersModel;
  try {
    if (flags.resume) {
      const checkpoint = await loadCheckpoint(flags.modelDir);
      epochs = checkpoint.settings.epochs;
      report.result(`resuming after epoch ${checkpoint.epochsCompleted} of ${epochs} from ${flags.modelDir}`);
      model = checkpoint.model;
      report.result(modelLine(model, flags));
      result = await resumeTraining(checkpoint, train, val, callbacks);
    } else {
      // checkModelDir found the folder missing, empty or one of our model folders.
      if (flags.force && fs.existsSync(flags.modelDir)) await emptyOurFolder(flags.modelDir);
      const architecture = resolveArchitecture({
        inputSize: flags.imageSize,
        classes: train.classNames.length,
        stages: flags.stages,
        filters: flags.filters,
        l2: TRAIN_DEFAULTS.l2,
        seed: flags.seed,
      });
      model = buildResNet({ ...architecture, seed: flags.seed });
      report.result(modelLine(model, flags));
      const settings: TrainSettings = {
        epochs: flags.epochs,
        initialLr: flags.lr,
        power: 1,
        momentum: TRAIN_DEFAULTS.momentum,
        seed: flags.seed,
        architecture,
        run: { data: flags.data, batchSize: flags.batchSize, imageSize: flags.imageSize, backend: backend.name, preset: flags.preset },
      };
      result = await trainModel(model, train, val, settings, callbacks);
    }
  } catch (err) {
    throw err instanceof DivergedError ? divergedError(err, flags) : err;
  } finally {
    // An epoch cut short keeps its bar as it was (not drawn as complete); just end its line.
    if (bar && process.stderr.isTTY) process.stderr.write('\n');
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  if (skippedFiles.length) report.result(`skipped ${skippedFiles.length} undecodable images: ${skippedFiles.slice(0, 5).join('; ')}${skippedFiles.length > 5 ? '; ...' : ''}`);
  if (result.stoppedEarly) {
    report.result(
      result.epochsCompleted > 0
        ? `stopped after ${result.epochsCompleted} of ${epochs} epochs; continue with \`malaria train --resume --model-dir ${flags.modelDir}\``
        : `stopped before the first epoch completed; nothing was saved`,
    );
    process.exitCode = 130;
    return;
  }
  report.result(`saved the model to ${flags.modelDir}`);
  const fit = await calibrateTemperature(model, val, flags.modelDir);
  report.result(formatTemperatureFit(fit, DATASET_DEFAULTS.splits.val));
  const inference = { temperature: fit.applied ? fit.temperature : undefined };

  // The final report on the held-out testing split, as the tutorial prints it.
  report.result(`\nevaluating on ${test.files.length} testing images`);
  const predictions = await predictProbabilities(model, test, undefined, inference);
  const evaluation = evaluatePredictions(predictions, [...test.classNames]);
  report.result(formatClassificationReport(evaluation.metrics));
  if (evaluation.screening) report.result(formatScreening(evaluation.screening));
  report.result(`${formatCalibration(evaluation.calibration, inference)}\n`);
  report.result(asciiChart(result.history, { color: process.stdout.isTTY }));
  await renderTrainingPlot(result.history, flags.plot);
  report.result(`wrote the training plot to ${flags.plot}`);
  model.dispose();
}
