// `malaria train`'s work, apart from the command line: the run's recipe from the flags and the preset, or read from
// the checkpoint being resumed; check --model-dir; train (or resume) in micro-batches the backend can hold, fit the
// temperature and report on the testing split. `runTraining` runs the steps in order; each is exported so a test can
// drive one alone.
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import type { tf } from '../tf.js';
import { selectBackend, type BackendChoice, type BackendName } from '../backends/select.js';
import {
  assertSameExclusion,
  matchExcludeList,
  readExcludeList,
  type ExcludeList,
  type Exclusion,
} from '../input/exclude-list.js';
import { openSplitSources, type SplitSources } from '../input/sources.js';
import type { BatchSource } from '../input/types.js';
import { assertOutsideFolder, checkOutputFile } from '../io/output-file.js';
import { assertApart, checkOutputFolder, emptyOurFolder } from '../io/output-folder.js';
import { formatTemperatureFit } from '../report/calibration.js';
import { asciiChart } from '../report/chart.js';
import { formatClassificationReport } from '../report/classification-report.js';
import { evaluatePredictions } from '../stats/evaluation.js';
import { formatCalibration, formatScreening } from '../report/evaluation.js';
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
import { flagName, flagValue, formatPreset, withPreset, type PresetSettings } from '../model/presets.js';
import { checkRecipe, RECIPE_FLAGS, recipeOf, type RecipeFlags, type TrainRecipe } from '../model/recipe.js';
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
import { preprocessingOf } from '../input/preprocessing.js';

/**
 * Where a training run reads and writes, and how this process runs it: the `train` flags that are not its recipe,
 * free to differ when the run is resumed (--data only in that the folder may have moved).
 */
export interface TrainingSetup {
  data: string;
  modelDir: string;
  plot: string;
  backend: BackendChoice;
  /** Images per forward/backward pass; default: chooseMicroBatch's for the backend and network. */
  microBatch?: number;
  /** --exclude: a CSV of training files to leave out (src/input/exclude-list.ts); the recipe keeps its sha256. */
  exclude?: string;
  resume?: boolean;
  force?: boolean;
}

/** The `train` flags: the recipe they give (--positive resolved from the data's classes as the run starts) and the setup. */
export type TrainFlags = RecipeFlags & TrainingSetup;

/** A run ready to start: what it is (a resumed run's, read from its checkpoint) and where it reads and writes. */
export interface ResolvedTraining {
  recipe: TrainRecipe;
  setup: TrainingSetup;
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

/**
 * The checks after parsing, once a preset filled in the recipe: the recipe's (checkRecipe: the ranges the parsers
 * checked, for a recipe built in code, then the settings that must agree) and the setup's.
 */
function checkTrainingFlags(recipe: PresetSettings, setup: Pick<TrainingSetup, 'resume' | 'force'>): void {
  checkRecipe(recipe);
  if (setup.resume && setup.force) throw new UserError('--resume and --force contradict each other: pass one of them');
}

function checkData(setup: TrainingSetup): void {
  if (!fs.existsSync(setup.data)) {
    throw new UserError(`data folder ${setup.data} not found: run \`malaria build-dataset\` first, or pass --data`);
  }
}

/** The flags that say where the run reads and writes and how this process runs it. */
function setupOf(flags: TrainFlags): TrainingSetup {
  const { data, modelDir, plot, backend, microBatch, exclude, resume, force } = flags;
  return { data, modelDir, plot, backend, microBatch, exclude, resume, force };
}

/**
 * `--resume` continues the checkpointed run as it was: the recipe its checkpoint holds (so the same shuffles,
 * schedule and network), and its data folder unless --data is given (the folder may have moved). A flag may repeat a
 * setting of the recipe; a different value is refused rather than silently ignored. The rest of the setup (backend,
 * micro-batch, plot) is this process's to choose.
 */
async function resumedRun(
  asked: TrainRecipe,
  setup: TrainingSetup,
  given: (key: string) => boolean,
): Promise<ResolvedTraining> {
  const saved = await loadCheckpointState(setup.modelDir);
  for (const key of RECIPE_FLAGS) {
    const value = saved.recipe[key];
    if (value === undefined || !given(key) || flagValue(asked[key]) === flagValue(value)) continue;
    const flag = flagName(key);
    throw new UserError(
      `${flag} ${flagValue(asked[key])} differs from the interrupted run's ${flagValue(value)}: resume with the same flags, or leave ${flag} out`,
    );
  }
  // Absent in older checkpoints: the positive class is then chosen from the data's classes as a new run's is.
  const positive = saved.recipe.positive ?? asked.positive;
  return {
    recipe: { ...saved.recipe, ...(positive === undefined ? {} : { positive }) },
    setup: { ...setup, data: given('data') ? setup.data : (saved.data ?? setup.data) },
  };
}

/** --exclude's list, read and (with --resume) checked against the interrupted run's before any work. */
async function readExclusion({ recipe, setup }: ResolvedTraining): Promise<ExcludeList | undefined> {
  const list = setup.exclude === undefined ? undefined : await readExcludeList(setup.exclude);
  if (setup.resume) assertSameExclusion(recipe.excluded, list);
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
function divergedError(err: DivergedError, lr: number, modelDir: string): UserError {
  const lower = Number((lr / 10).toPrecision(2));
  const kept =
    err.epoch > 0
      ? `, with --force to start over; the checkpoint of epoch ${err.epoch} in ${modelDir} is kept`
      : '; no epoch completed, so nothing was saved';
  return new UserError(`${err.message} than ${lr}, such as --lr ${lower}${kept}`, 1);
}

/**
 * --model-dir must be apart from the splits it reads (and so must --plot), and may be replaced by --force only when
 * it is empty or one of our model folders (src/io/output-folder.ts). Leftovers of killed runs are cleaned after.
 * --plot is checked here, before any work, not after a long run: outside --model-dir, and missing, one of our PNGs or
 * (with --force) any file (src/io/output-file.ts).
 */
async function checkModelDir(flags: TrainingSetup): Promise<void> {
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
function microBatchFor(
  model: tf.LayersModel,
  batchSize: number,
  asked: number | undefined,
  backend: BackendName,
  report: Reporter,
): number {
  const microBatch = chooseMicroBatch(backend, batchSize, activationsPerImage(model), asked);
  if (microBatch < batchSize) {
    report.result(
      `batch ${batchSize} is trained as ${Math.ceil(batchSize / microBatch)} micro-batches of ${microBatch} with summed gradients (one optimizer step per batch; batch norm sees ${microBatch} images at a time)`,
    );
  }
  return microBatch;
}

/**
 * The recipe the run follows: the flags', with the preset's settings where no flag is given, or (--resume) the one
 * its checkpoint holds; after checking it, the setup and --model-dir. Throws a UserError for anything the user must
 * change.
 */
async function resolveTraining(
  flags: TrainFlags,
  given: (key: string) => boolean = () => true,
): Promise<ResolvedTraining> {
  const setup = setupOf(flags);
  // A resumed run takes its recipe from its checkpoint: the flags are only checked against it.
  const asked = recipeOf(setup.resume ? flags : withPreset(flags, flags.preset, given));
  checkTrainingFlags(asked, setup);
  await checkModelDir(setup);
  const resolved = setup.resume ? await resumedRun(asked, setup, given) : { recipe: asked, setup };
  checkData(resolved.setup);
  return resolved;
}

/** Trains (or resumes) the run the flags resolve to, then fits the temperature and reports on the testing split. */
export async function runTraining(flags: TrainFlags, events: TrainingEvents): Promise<TrainingOutcome> {
  const { report } = events;
  const resolved = await resolveTraining(flags, events.given);
  const { recipe, setup } = resolved;
  const excludeList = await readExclusion(resolved);
  const backend = await selectBackend(setup.backend);
  report.note(backend.message);
  report.result(formatPreset(recipe.preset, recipe));
  let exclusion: Exclusion | undefined;

  const skippedFiles: string[] = [];
  const sources = await openSplitSources({
    data: setup.data,
    preprocessing: preprocessingOf(recipe),
    batchSize: recipe.batchSize,
    seed: recipe.seed,
    rotation: recipe.rotation,
    color: recipe.color,
    onSkip: (s) => skippedFiles.push(`${s.path} (${s.reason})`),
    excludeFromTraining:
      excludeList && (async (listing) => (exclusion = await matchExcludeList(excludeList, listing)).paths),
  });
  const { train, val, test } = sources;
  const excluded = excludeList && exclusion ? { sha256: excludeList.sha256, count: exclusion.paths.size } : undefined;
  if (excludeList && exclusion) reportExclusion(excludeList.file, exclusion, report);
  if (excludeList && train.files.length === 0) {
    throw new UserError(`--exclude ${setup.exclude} leaves no training image: pass a list of fewer files`);
  }
  // What a new run leaves out is part of its recipe, so a resume leaves out the same (a resumed one has it already).
  if (excluded && excludeList && !setup.resume) recipe.excluded = { ...excluded, file: excludeList.file };
  // Before anything is trained or written: the class the model will screen for, named or Parasitized, never a guess.
  recipe.positive = choosePositiveClass(
    train.classNames,
    recipe.positive,
    path.join(setup.data, DATASET_DEFAULTS.splits.train),
  );
  report.result(
    `found ${train.files.length} training, ${val.files.length} validation and ${test.files.length} testing images in ${train.classNames.length} classes (${train.classNames.join(', ')})${recipe.positive === undefined ? '' : `; positive class: ${recipe.positive}`}`,
  );
  if (val.files.length === 0)
    throw new UserError(
      `${setup.data}/${DATASET_DEFAULTS.splits.val} holds no images: rebuild the splits with \`malaria build-dataset\``,
    );

  const interrupt = events.interrupt?.();
  let trained;
  try {
    trained = await trainOrResume(recipe, setup, sources, { backend: backend.name, report, signal: interrupt?.signal });
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
        ? `stopped after ${result.epochsCompleted} of ${epochs} epochs; continue with \`malaria train --resume --model-dir ${setup.modelDir}\``
        : `stopped before the first epoch completed; nothing was saved`,
    );
    return { stoppedEarly: true, epochsCompleted: result.epochsCompleted };
  }
  // Beside the temperature fitted next: what the model was trained without, by the list's hash.
  if (excluded) await updateMetadata(setup.modelDir, { excluded });
  report.result(`saved the model to ${setup.modelDir}`);
  try {
    await finalReport(model, val, test, result.history, { ...setup, positive: recipe.positive }, report);
  } finally {
    model.dispose();
  }
  return { stoppedEarly: false, epochsCompleted: result.epochsCompleted };
}

/**
 * Builds the model from the recipe (or, with setup.resume, loads the checkpoint in setup.modelDir and follows the
 * recipe it holds) and runs the epochs on the sources given, with a progress bar and one line per epoch (`onEpochEnd`
 * is told after the line). A caller that is not `train` (crossval's folds) passes its own sources and a model folder
 * it checked.
 */
export async function trainOrResume(
  recipe: TrainRecipe,
  setup: Pick<TrainingSetup, 'data' | 'modelDir' | 'microBatch' | 'resume' | 'force'>,
  { train, val }: Pick<SplitSources, 'train' | 'val'>,
  run: {
    backend: BackendName;
    report: Reporter;
    signal?: AbortSignal;
    onEpochEnd?: (info: EpochEndInfo) => void;
  },
): Promise<{ model: tf.LayersModel; result: TrainResult; epochs: number }> {
  const { report } = run;
  let bar: ProgressBar | undefined;
  // The bar appears after the first batch; its clock starts with the epoch so the first ETA is not zero.
  let epochStartedAt = Date.now();
  // The recipe the epochs follow: a resumed run's is its checkpoint's.
  let followed = recipe;
  let epochs = recipe.epochs;
  const callbacks = {
    modelDir: setup.modelDir,
    data: setup.data,
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
    if (setup.resume) {
      const checkpoint = await loadCheckpoint(setup.modelDir);
      followed = checkpoint.recipe;
      // An older checkpoint lacks the positive class: the one chosen for this run is recorded from now on.
      followed.positive ??= recipe.positive;
      epochs = followed.epochs;
      report.result(`resuming after epoch ${checkpoint.epochsCompleted} of ${epochs} from ${setup.modelDir}`);
      report.result(modelLine(checkpoint.model, followed));
      const microBatchSize = microBatchFor(checkpoint.model, followed.batchSize, setup.microBatch, run.backend, report);
      const result = await resumeTraining(checkpoint, train, val, { ...callbacks, microBatchSize });
      return { model: checkpoint.model, result, epochs };
    }
    // checkModelDir found the folder missing, empty or one of our model folders.
    if (setup.force && fs.existsSync(setup.modelDir))
      await emptyOurFolder(setup.modelDir, { kind: 'model', label: `--model-dir ${setup.modelDir}` });
    const architecture = resolveArchitecture({
      inputSize: recipe.imageSize,
      classes: train.classNames.length,
      stages: recipe.stages,
      filters: recipe.filters,
      l2: recipe.l2,
    });
    const model = buildResNet({ ...architecture, seed: recipe.seed });
    report.result(modelLine(model, recipe));
    const microBatchSize = microBatchFor(model, recipe.batchSize, setup.microBatch, run.backend, report);
    return { model, result: await trainModel(model, train, val, recipe, { ...callbacks, microBatchSize }), epochs };
  } catch (err) {
    throw err instanceof DivergedError ? divergedError(err, followed.lr, setup.modelDir) : err;
  } finally {
    // An epoch cut short keeps its bar as it was (not drawn as complete); just end its line.
    if (bar && process.stderr.isTTY) process.stderr.write('\n');
  }
}

/** After the last epoch: the temperature fitted on validation, the report on testing, the chart and the plot. */
async function finalReport(
  model: tf.LayersModel,
  val: BatchSource,
  test: BatchSource,
  history: TrainingHistory,
  flags: Pick<TrainingSetup, 'modelDir' | 'plot' | 'force'> & Pick<TrainRecipe, 'positive'>,
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
