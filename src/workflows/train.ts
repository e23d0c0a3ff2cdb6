// `malaria train`'s work, apart from the command line: reconcile the flags with the preset or the checkpoint being
// resumed, check --model-dir, train (or resume) in micro-batches the backend can hold, fit the temperature and report
// on the testing split. `runTraining` runs the steps in order; each is exported so a test can drive one alone.
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_DEFAULTS, TRAIN_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import type { tf } from '../tf.js';
import { selectBackend, type BackendChoice, type BackendName } from '../backends/select.js';
import {
  assertSameExclusion,
  matchExcludeList,
  readExcludeList,
  type CheckpointExclusion,
  type ExcludeList,
  type Exclusion,
} from '../input/exclude-list.js';
import { openSplitSources, type SplitSources } from '../input/sources.js';
import type { BatchSource } from '../input/types.js';
import { assertOutsideFolder, checkOutputFile } from '../io/output-file.js';
import { assertApart, checkOutputFolder, emptyOurFolder } from '../io/output-folder.js';
import { formatTemperatureFit } from '../stats/calibration.js';
import { asciiChart } from '../report/chart.js';
import { formatClassificationReport } from '../report/classification-report.js';
import { evaluatePredictions, formatCalibration, formatScreening } from '../stats/evaluation.js';
import type { TrainingHistory } from '../model/history.js';
import { choosePositiveClass } from '../stats/positive-class.js';
import { plural } from '../report/predictions.js';
import { renderTrainingPlot } from '../report/plot.js';
import type { ProgressBar } from '../report/progress.js';
import type { Reporter } from '../report/reporter.js';
import { epochLine, fraction4, modelLine } from '../report/training-log.js';
import { calibrateTemperature } from '../model/calibrate.js';
import { hasCheckpoint, loadCheckpoint, loadCheckpointState } from '../model/checkpoint.js';
import { MODEL_FILE, sweepModelFolder, updateMetadata } from '../model/io.js';
import { activationsPerImage, chooseMicroBatch, outOfMemoryLine } from '../model/micro-batch.js';
import { predictionPatients, predictProbabilities } from '../model/predict.js';
import { formatPreset, withPreset, type PresetName } from '../model/presets.js';
import { type TrainRecipe } from '../model/recipe.js';
import { buildResNet, resolveArchitecture } from '../model/resnet.js';
import {
  DivergedError,
  resumeTraining,
  trainModel,
  type BatchEndInfo,
  type EpochEndInfo,
  type OutOfMemoryInfo,
  type TrainResult,
} from '../model/train.js';
import { type TrainSettings } from '../model/recipe.js';

/** The `train` flags: the run's recipe (a preset's settings), where it reads and writes, and how it starts. */
export interface TrainingOptions extends TrainRecipe {
  data: string;
  modelDir: string;
  plot: string;
  /** Images per forward/backward pass; default: chooseMicroBatch's for the backend and network. */
  microBatch?: number;
  seed: number;
  backend: BackendChoice;
  preset: PresetName;
  /** The class to screen for (--positive); resolved from the data's classes (choosePositiveClass) as the run starts. */
  positive?: string;
  /** --exclude: a CSV of training files to leave out (src/input/exclude-list.ts); validation and testing stay whole. */
  exclude?: string;
  resume?: boolean;
  force?: boolean;
}

export interface TrainingEvents {
  /** Where the run's lines go (results on stdout, notes and progress on stderr in the CLI). */
  report: Reporter;
  /**
   * True when the option was given on the command line: it then overrides the preset, and must match a resumed run.
   * Default: every option counts as given (a library caller states what it wants).
   */
  given?: (key: string) => boolean;
  /**
   * Called as the epochs start: its signal stops the run cleanly after the current batch (the last completed epoch
   * stays saved); `release` is called as they end. The CLI passes Ctrl-C's (src/io/interrupt.ts).
   */
  interrupt?: () => { signal: AbortSignal; release: () => void };
}

/** How the run ended: stopped by the signal (the CLI exits 130) or trained, calibrated and reported. */
export interface TrainingOutcome {
  stoppedEarly: boolean;
  epochsCompleted: number;
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

export function validateTrainingOptions(flags: TrainingOptions): void {
  checkArchitectureFlags(flags);
  if (flags.imageSize < 8) throw new UserError('--image-size must be at least 8');
  if (flags.warmup >= flags.epochs)
    throw new UserError(
      `--warmup ${flags.warmup} leaves no epoch to train at the full rate: use fewer than --epochs ${flags.epochs}`,
    );
  if (!(flags.rotation >= 0 && flags.rotation <= 180))
    throw new UserError('--rotation must be between 0 and 180 degrees (180 turns the images every way)');
  if (!(flags.color >= 0 && flags.color < 1))
    throw new UserError('--color must be at least 0 and below 1, for example 0.1');
  if (!(flags.labelSmoothing >= 0 && flags.labelSmoothing < 1))
    throw new UserError('--label-smoothing must be at least 0 and below 1, for example 0.1');
  if (!(flags.l2 < 0.1))
    throw new UserError('--l2 must be below 0.1 (the tutorial uses 0.0005; 0 turns the penalty off)');
  if (!(flags.ema === 0 || (flags.ema > 0 && flags.ema < 1)))
    throw new UserError('--ema must be 0 (off) or a decay between 0 and 1, for example 0.999');
  if (flags.resume && flags.force) throw new UserError('--resume and --force contradict each other: pass one of them');
}

function checkData(flags: TrainingOptions): void {
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
export async function resumedOptions(
  flags: TrainingOptions,
  given: (key: string) => boolean,
): Promise<TrainingOptions> {
  const { settings } = await loadCheckpointState(flags.modelDir);
  const run = settings.run ?? {};
  const saved: Partial<Record<keyof TrainingOptions, unknown>> = {
    data: run.data,
    imageSize: run.imageSize,
    resize: settings.resize ?? 'nearest',
    stain: settings.stain ?? 'keep',
    batchSize: run.batchSize,
    rotation: run.rotation ?? TRAIN_DEFAULTS.rotation,
    color: run.color ?? 0,
    epochs: settings.epochs,
    lr: settings.initialLr,
    seed: settings.seed,
    stages: settings.architecture?.stages,
    filters: settings.architecture?.filters,
    schedule: settings.schedule ?? 'linear',
    warmup: settings.warmupEpochs ?? 0,
    labelSmoothing: settings.labelSmoothing ?? 0,
    l2: settings.architecture?.l2,
    ema: settings.ema ?? 0,
    preset: run.preset,
    // Absent in older checkpoints: chosen from the data's classes as a new run's is.
    positive: settings.positiveClass,
  };
  const resumed: Record<string, unknown> = { ...flags };
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined || (key === 'data' && given(key))) continue;
    const option = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    const mine = flags[key as keyof TrainingOptions];
    if (given(key) && formatFlag(mine) !== formatFlag(value)) {
      throw new UserError(
        `${option} ${formatFlag(mine)} differs from the interrupted run's ${formatFlag(value)}: resume with the same flags, or leave ${option} out`,
      );
    }
    resumed[key] = value;
  }
  return resumed as unknown as TrainingOptions;
}

/** --exclude's list, read and (with --resume) checked against the interrupted run's before any work. */
async function readExclusion(flags: TrainingOptions): Promise<ExcludeList | undefined> {
  const list = flags.exclude === undefined ? undefined : await readExcludeList(flags.exclude);
  if (flags.resume) {
    const { settings } = await loadCheckpointState(flags.modelDir);
    assertSameExclusion(settings.run?.excluded as CheckpointExclusion | undefined, list);
  }
  return list;
}

/** One line for what --exclude left out, and a warning when some listed files are not training images here. */
function reportExclusion(file: string, { paths, unmatched }: Exclusion, report: Reporter): void {
  report.result(
    `--exclude ${file}: left out ${plural(paths.size, 'training image')} (validation and testing are not filtered)`,
  );
  if (unmatched > 0) {
    report.note(
      `warning: --exclude ${file} lists ${plural(unmatched, 'file')} not in the training split (in another split, or gone); nothing is done with them`,
    );
  }
}

/** Where a diverged run stands and what to do: the checkpoint before it (if any) is untouched. */
function divergedError(err: DivergedError, flags: TrainingOptions): UserError {
  const lower = Number((flags.lr / 10).toPrecision(2));
  const kept =
    err.epoch > 0
      ? `, with --force to start over; the checkpoint of epoch ${err.epoch} in ${flags.modelDir} is kept`
      : '; no epoch completed, so nothing was saved';
  return new UserError(`${err.message} than ${flags.lr}, such as --lr ${lower}${kept}`, 1);
}

/**
 * --model-dir must be apart from the splits it reads (and so must --plot), and may be replaced by --force only when
 * it is empty or one of our model folders (src/io/output-folder.ts). Leftovers of killed runs are cleaned after.
 * --plot is checked here, before any work, not after a long run: outside --model-dir, and missing, one of our PNGs or
 * (with --force) any file (src/io/output-file.ts).
 */
export async function checkModelDir(flags: TrainingOptions): Promise<void> {
  const splits = Object.values(DATASET_DEFAULTS.splits).map((split) => ({
    path: path.join(flags.data, split),
    label: `the ${split} split of --data ${flags.data}`,
  }));
  await assertApart(
    [
      { path: flags.modelDir, label: `--model-dir ${flags.modelDir}` },
      { path: flags.plot, label: `--plot ${flags.plot}` },
    ],
    splits,
  );
  const plot = `--plot ${flags.plot}`;
  await assertOutsideFolder(
    { path: flags.plot, label: plot },
    { path: flags.modelDir, label: `--model-dir ${flags.modelDir}` },
    'the model',
  );
  // --resume refuses --force, so the advice leaves it out there.
  await checkOutputFile(flags.plot, plot, { force: flags.force, forceAllowed: !flags.resume });
  await checkOutputFolder(flags.modelDir, 'model', `--model-dir ${flags.modelDir}`);
  // Only once the folder is found ours: a refused run changes nothing, not even our own leftovers.
  await sweepModelFolder(flags.modelDir);
  const checkpointed = await hasCheckpoint(flags.modelDir);
  if (flags.resume) {
    if (!checkpointed)
      throw new UserError(`nothing to resume: ${flags.modelDir} holds no checkpoint; run without --resume`);
    return;
  }
  if (flags.force) return;
  if (checkpointed || fs.existsSync(path.join(flags.modelDir, MODEL_FILE))) {
    throw new UserError(
      `${flags.modelDir} already holds a model: pass --force to replace it, --resume to continue its run, or choose another --model-dir`,
    );
  }
}

/** The micro-batch for this model on this backend, announced when a batch is split into several. */
function microBatchFor(model: tf.LayersModel, flags: TrainingOptions, backend: BackendName, report: Reporter): number {
  const microBatch = chooseMicroBatch(backend, flags.batchSize, activationsPerImage(model), flags.microBatch);
  if (microBatch < flags.batchSize) {
    report.result(
      `batch ${flags.batchSize} is trained as ${Math.ceil(flags.batchSize / microBatch)} micro-batches of ${microBatch} with summed gradients (one optimizer step per batch; batch norm sees ${microBatch} images at a time)`,
    );
  }
  return microBatch;
}

/**
 * The settings the run follows: the preset's where no flag is given, or (--resume) the checkpoint's, after checking
 * them and --model-dir. Throws a UserError for anything the user must change.
 */
export async function resolveTrainingOptions(
  options: TrainingOptions,
  given: (key: string) => boolean = () => true,
): Promise<TrainingOptions> {
  // A resumed run takes its recipe from its checkpoint instead.
  let resolved = options.resume ? { ...options } : withPreset(options, options.preset, given);
  validateTrainingOptions(resolved);
  await checkModelDir(resolved);
  if (resolved.resume) resolved = await resumedOptions(resolved, given);
  checkData(resolved);
  return resolved;
}

/** Trains (or resumes) with the options resolved, then fits the temperature and reports on the testing split. */
export async function runTraining(options: TrainingOptions, events: TrainingEvents): Promise<TrainingOutcome> {
  const { report } = events;
  const flags = await resolveTrainingOptions(options, events.given);
  const excludeList = await readExclusion(flags);
  const backend = await selectBackend(flags.backend);
  report.note(backend.message);
  report.result(formatPreset(flags.preset, flags));
  let exclusion: Exclusion | undefined;

  const skippedFiles: string[] = [];
  const sources = await openSplitSources({
    data: flags.data,
    imageSize: flags.imageSize,
    resize: flags.resize,
    stain: flags.stain,
    batchSize: flags.batchSize,
    seed: flags.seed,
    rotation: flags.rotation,
    color: flags.color,
    onSkip: (s) => skippedFiles.push(`${s.path} (${s.reason})`),
    excludeFromTraining:
      excludeList && (async (listing) => (exclusion = await matchExcludeList(excludeList, listing)).paths),
  });
  const { train, val, test } = sources;
  const excluded = excludeList && exclusion ? { sha256: excludeList.sha256, count: exclusion.paths.size } : undefined;
  if (excludeList && exclusion) reportExclusion(excludeList.file, exclusion, report);
  if (excludeList && train.files.length === 0) {
    throw new UserError(`--exclude ${flags.exclude} leaves no training image: pass a list of fewer files`);
  }
  // Before anything is trained or written: the class the model will screen for, named or Parasitized, never a guess.
  flags.positive = choosePositiveClass(
    train.classNames,
    flags.positive,
    path.join(flags.data, DATASET_DEFAULTS.splits.train),
  );
  report.result(
    `found ${train.files.length} training, ${val.files.length} validation and ${test.files.length} testing images in ${train.classNames.length} classes (${train.classNames.join(', ')})${flags.positive === undefined ? '' : `; positive class: ${flags.positive}`}`,
  );
  if (val.files.length === 0)
    throw new UserError(
      `${flags.data}/${DATASET_DEFAULTS.splits.val} holds no images: rebuild the splits with \`malaria build-dataset\``,
    );

  const interrupt = events.interrupt?.();
  let trained;
  try {
    trained = await trainOrResume(flags, sources, {
      backend: backend.name,
      report,
      signal: interrupt?.signal,
      excluded: excluded && excludeList && { ...excluded, file: excludeList.file },
    });
  } finally {
    interrupt?.release();
  }
  const { model, result, epochs } = trained;
  if (skippedFiles.length)
    report.result(
      `skipped ${skippedFiles.length} undecodable images: ${skippedFiles.slice(0, 5).join('; ')}${skippedFiles.length > 5 ? '; ...' : ''}`,
    );
  if (result.stoppedEarly) {
    report.result(
      result.epochsCompleted > 0
        ? `stopped after ${result.epochsCompleted} of ${epochs} epochs; continue with \`malaria train --resume --model-dir ${flags.modelDir}\``
        : `stopped before the first epoch completed; nothing was saved`,
    );
    return { stoppedEarly: true, epochsCompleted: result.epochsCompleted };
  }
  // Beside the temperature fitted next: what the model was trained without, by the list's hash.
  if (excluded) await updateMetadata(flags.modelDir, { excluded });
  report.result(`saved the model to ${flags.modelDir}`);
  try {
    await finalReport(model, val, test, result.history, flags, report);
  } finally {
    model.dispose();
  }
  return { stoppedEarly: false, epochsCompleted: result.epochsCompleted };
}

/**
 * Builds the model (or loads the checkpoint in flags.modelDir when flags.resume) and runs the epochs on the sources
 * given, with a progress bar and one line per epoch (`onEpochEnd` is told after the line). A caller that is not
 * `train` (crossval's folds) passes its own sources and a model folder it checked.
 */
export async function trainOrResume(
  flags: TrainingOptions,
  { train, val }: Pick<SplitSources, 'train' | 'val'>,
  run: {
    backend: BackendName;
    report: Reporter;
    signal?: AbortSignal;
    onEpochEnd?: (info: EpochEndInfo) => void;
    /** `train --exclude`: recorded in the checkpoint, so a resume leaves out the same files. */
    excluded?: CheckpointExclusion;
  },
): Promise<{ model: tf.LayersModel; result: TrainResult; epochs: number }> {
  const { report } = run;
  let bar: ProgressBar | undefined;
  // The bar appears after the first batch; its clock starts with the epoch so the first ETA is not zero.
  let epochStartedAt = Date.now();
  let epochs = flags.epochs;
  const callbacks = {
    modelDir: flags.modelDir,
    signal: run.signal,
    onBatchEnd: (info: BatchEndInfo) => {
      bar ??= report.progress({
        total: info.batches,
        label: `Epoch ${info.epoch + 1}/${epochs}`,
        startedAt: epochStartedAt,
      });
      bar.update(info.batch + 1, `loss: ${fraction4(info.loss)} - accuracy: ${fraction4(info.accuracy)}`);
    },
    onEpochEnd: (info: EpochEndInfo) => {
      bar?.finish();
      bar = undefined;
      report.result(epochLine(info, epochs));
      run.onEpochEnd?.(info);
      epochStartedAt = Date.now();
    },
    onOutOfMemory: (info: OutOfMemoryInfo) => report.note(outOfMemoryLine(info)),
  };
  try {
    if (flags.resume) {
      const checkpoint = await loadCheckpoint(flags.modelDir);
      // An older checkpoint lacks the positive class: the one chosen for this run is recorded from now on.
      checkpoint.settings.positiveClass = flags.positive;
      epochs = checkpoint.settings.epochs;
      report.result(`resuming after epoch ${checkpoint.epochsCompleted} of ${epochs} from ${flags.modelDir}`);
      report.result(modelLine(checkpoint.model, flags));
      const microBatchSize = microBatchFor(checkpoint.model, flags, run.backend, report);
      const result = await resumeTraining(checkpoint, train, val, { ...callbacks, microBatchSize });
      return { model: checkpoint.model, result, epochs };
    }
    // checkModelDir found the folder missing, empty or one of our model folders.
    if (flags.force && fs.existsSync(flags.modelDir))
      await emptyOurFolder(flags.modelDir, { kind: 'model', label: `--model-dir ${flags.modelDir}` });
    const architecture = resolveArchitecture({
      inputSize: flags.imageSize,
      classes: train.classNames.length,
      stages: flags.stages,
      filters: flags.filters,
      l2: flags.l2,
      seed: flags.seed,
    });
    const model = buildResNet({ ...architecture, seed: flags.seed });
    report.result(modelLine(model, flags));
    const microBatchSize = microBatchFor(model, flags, run.backend, report);
    const settings: TrainSettings = {
      epochs: flags.epochs,
      initialLr: flags.lr,
      power: 1,
      schedule: flags.schedule,
      warmupEpochs: flags.warmup,
      labelSmoothing: flags.labelSmoothing,
      ema: flags.ema,
      momentum: TRAIN_DEFAULTS.momentum,
      seed: flags.seed,
      architecture,
      resize: flags.resize,
      stain: flags.stain,
      positiveClass: flags.positive,
      run: {
        data: flags.data,
        batchSize: flags.batchSize,
        imageSize: flags.imageSize,
        rotation: flags.rotation,
        color: flags.color,
        backend: run.backend,
        preset: flags.preset,
        ...(run.excluded ? { excluded: run.excluded } : {}),
      },
    };
    return { model, result: await trainModel(model, train, val, settings, { ...callbacks, microBatchSize }), epochs };
  } catch (err) {
    throw err instanceof DivergedError ? divergedError(err, flags) : err;
  } finally {
    // An epoch cut short keeps its bar as it was (not drawn as complete); just end its line.
    if (bar && process.stderr.isTTY) process.stderr.write('\n');
  }
}

/** After the last epoch: the temperature fitted on validation, the report on testing, the chart and the plot. */
export async function finalReport(
  model: tf.LayersModel,
  val: BatchSource,
  test: BatchSource,
  history: TrainingHistory,
  flags: Pick<TrainingOptions, 'modelDir' | 'plot' | 'positive' | 'force'>,
  report: Reporter,
): Promise<void> {
  const fit = await calibrateTemperature(model, val, flags.modelDir);
  report.result(formatTemperatureFit(fit, DATASET_DEFAULTS.splits.val));
  const inference = { temperature: fit.applied ? fit.temperature : undefined };

  // The final report on the held-out testing split, as the tutorial prints it.
  report.result(`\nevaluating on ${test.files.length} testing images`);
  const predictions = await predictProbabilities(model, test, undefined, inference);
  const classes = { classNames: test.classNames, positiveClass: flags.positive };
  const evaluation = evaluatePredictions(predictions, classes, undefined, {
    clusters: predictionPatients(test, predictions),
  });
  report.result(formatClassificationReport(evaluation.metrics));
  if (evaluation.screening) report.result(formatScreening(evaluation.screening));
  report.result(`${formatCalibration(evaluation.calibration, inference)}\n`);
  report.result(asciiChart(history, { color: process.stdout.isTTY }));
  await renderTrainingPlot(history, { path: flags.plot, label: `--plot ${flags.plot}`, force: flags.force });
  report.result(`wrote the training plot to ${flags.plot}`);
}
