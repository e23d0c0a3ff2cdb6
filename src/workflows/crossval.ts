// `malaria crossval`'s work, apart from the command line: k-fold cross-validation over whole patients. The input's
// unique cells (by sha256) are dealt into patient-disjoint folds; each fold's model trains on the other folds
// (less a tenth of their patients, its validation: the temperature is fitted there) and predicts the fold it held
// out, so every cell gets one out-of-fold P(positive class). Folds are lists of the input's files, never copies.
// Everything lands in --out: the settings and fold assignment (crossval-settings.json, which also makes a re-run
// continue where it stopped and refuses other settings), fold-N/ (a model folder, checkpointed every epoch),
// fold-N.csv (that fold's held-out probabilities: the fold is done), then oof.csv, crossval.json and roc.png.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DATASET_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import { selectBackend, type BackendChoice, type BackendName } from '../backends/select.js';
import { csvLine, parseCsv } from '../io/csv.js';
import { assignFolds } from '../dataset/folds.js';
import { listDataset, type ListedImage } from '../dataset/find-images.js';
import { patientIdOf, splitByPatient } from '../dataset/patients.js';
import { openListSources } from '../input/sources.js';
import type { LabelledFile } from '../input/types.js';
import { ImageCache } from '../input/image-cache.js';
import { sweepLeftovers, writeFileAtomic } from '../io/atomic.js';
import {
  CROSSVAL_FORMAT,
  CROSSVAL_SETTINGS,
  assertApart,
  checkOutputFolder,
  emptyOurFolder,
} from '../io/output-folder.js';
import { calibrateTemperature } from '../model/calibrate.js';
import { hasCheckpoint, loadCheckpointState } from '../model/checkpoint.js';
import { loadMetadata, sweepModelFolder } from '../model/io.js';
import { predictionFiles, predictProbabilities } from '../model/predict.js';
import {
  flagName,
  flagValue,
  formatPreset,
  PRESET_KEYS,
  withPreset,
  type PresetName,
  type PresetSettings,
} from '../model/presets.js';
import { checkRecipe, recipeOf, type RecipeFlags } from '../model/recipe.js';
import { trainOrResume } from './train.js';
import { thresholdInForce } from '../model/threshold.js';
import { formatTemperatureFit } from '../report/calibration.js';
import { renderCrossvalRoc } from '../report/crossval-plot.js';
import {
  compareCrossvals,
  crossvalFigures,
  crossvalRocCurves,
  foldFigures,
  type CrossvalComparison,
  type CrossvalFigures,
  type FoldModel,
  type OutOfFoldCell,
} from '../stats/crossval-figures.js';
import { formatCrossval, formatFoldFigures } from '../report/crossval-report.js';
import { choosePositiveClass } from '../stats/positive-class.js';
import { formatTimeLeft, type ProgressBar } from '../report/progress.js';
import type { Reporter } from '../report/reporter.js';
import { writeLabelReview, type LabelReview } from './label-review.js';
import { preprocessingOf } from '../input/preprocessing.js';

/** The crossval flags: where it reads and writes, how many folds, and the training recipe of every fold. */
export interface CrossvalOptions extends RecipeFlags {
  input: string;
  out: string;
  folds: number;
  backend: BackendChoice;
  /** Images per forward/backward pass; default: chosen for the backend (an engine detail, free on a re-run). */
  microBatch?: number;
  /** The class to screen for; default Parasitized (choosePositiveClass). */
  positive?: string;
  /** Start over in an --out that holds a cross-validation (ours only). */
  force?: boolean;
}

export interface CrossvalEvents {
  report: Reporter;
  /** True when the option was given on the command line (it then overrides the preset); default: all given. */
  given?: (key: string) => boolean;
  /** As runTraining's: its signal stops the run after the current batch; a re-run continues there. */
  interrupt?: () => { signal: AbortSignal; release: () => void };
}

export interface CrossvalOutcome {
  stoppedEarly: boolean;
  /** Folds whose held-out probabilities are written. */
  foldsDone: number;
  /** Present once every fold is done. */
  figures?: CrossvalFigures;
}

/** The files crossval writes into --out besides the fold folders (the ownership check lists the same names). */
const CROSSVAL_FILES = {
  settings: CROSSVAL_SETTINGS,
  oof: 'oof.csv',
  summary: 'crossval.json',
  roc: 'roc.png',
} as const;
const OOF_HEADER = ['file', 'sha256', 'patient', 'label', 'fold', 'probability'];
const SETTINGS_VERSION = 1;

const foldFolder = (out: string, fold: number): string => path.join(out, `fold-${fold}`);
const foldCsv = (out: string, fold: number): string => path.join(out, `fold-${fold}.csv`);

/** A unique cell of the input (the first copy of its bytes, by relative path, as build-dataset keeps). */
interface Cell {
  /** Relative to --input, with forward slashes: the key of everything crossval writes. */
  file: string;
  absolutePath: string;
  name: string;
  sha256: string;
  /** '' when the name carries no patient id. */
  patient: string;
  /** The class folder. */
  label: string;
}

/** What a run is, stored in crossval-settings.json: a re-run continues only the same run. */
interface CrossvalSettings {
  format: typeof CROSSVAL_FORMAT;
  version: number;
  /** As given (for people; the cells decide whether a re-run reads the same input). */
  input: string;
  folds: number;
  seed: number;
  preset: PresetName;
  /** The preset's settings as the flags changed them (the rest of every fold's recipe is beside them). */
  recipe: PresetSettings;
  classNames: string[];
  positiveClass: string;
  /** 'patient' unless no file name carries a patient id. */
  groupedBy: 'patient' | 'cell';
  /** Every unique cell with its 1-based fold, sorted by file. */
  cells: { file: string; sha256: string; patient: string; label: string; fold: number }[];
}

/** --folds: `folds` when it is 2 or more (the flag's parser checks the same as it reads it). */
export function checkFolds(folds: number): number {
  if (!Number.isSafeInteger(folds) || folds < 2)
    throw new UserError(`--folds must be 2 or more (each fold is tested by a model trained on the others)`);
  return folds;
}

/** The recipe as a `train` run checks it (ranges, architecture, warm-up), and --folds. */
function validate(options: CrossvalOptions): void {
  checkRecipe(options);
  checkFolds(options.folds);
}

async function checkInput(input: string): Promise<string> {
  const stat = await fsp.stat(input).catch(() => undefined);
  if (!stat)
    throw new UserError(
      `input folder ${input} not found; run \`malaria download\` to fetch the images or pass --input <folder with Parasitized/ and Uninfected/>`,
    );
  if (!stat.isDirectory())
    throw new UserError(`--input ${input} is a file, not a folder; pass the folder that holds the class folders`);
  return fsp.realpath(input);
}

/** The input's unique images, noting on stderr what was left out. */
async function listCells(inputDir: string, options: CrossvalOptions, report: Reporter): Promise<Cell[]> {
  let bar: ProgressBar | undefined;
  const listing = await listDataset(inputDir, {
    onStart: (total) => (bar = total > 0 ? report.progress({ total, label: 'scanning' }) : undefined),
    onProgress: () => bar?.tick(),
  });
  bar?.finish();
  const left = [
    [listing.duplicates.length, 'duplicate images (the same bytes as a cell kept)'],
    [listing.nonImages.length, 'files that are not images'],
    [listing.unlabelled.length, 'images outside a class folder'],
    [listing.rejected.length, 'image-named files that are not images'],
  ] as const;
  for (const [count, what] of left) if (count > 0) report.note(`left out of the folds: ${count} ${what}`);
  return listing.images.map((image: ListedImage) => ({
    file: image.relativePath,
    absolutePath: image.absolutePath,
    name: image.name,
    sha256: image.sha256,
    patient: patientIdOf(image.name) ?? '',
    label: image.className,
  }));
}

function classesOf(cells: readonly Cell[], options: CrossvalOptions): { classNames: string[]; positive: string } {
  const classNames = [...new Set(cells.map((cell) => cell.label))].sort();
  if (classNames.length !== 2)
    throw new UserError(
      `crossval needs images of two classes in --input ${options.input} (one folder each, such as Parasitized/ and Uninfected/); it has ${classNames.length === 0 ? 'none' : classNames.join(', ')}`,
    );
  const positive = choosePositiveClass(classNames, options.positive, `--input ${options.input}`) as string;
  return { classNames, positive };
}

/** A new run's settings: the cells dealt into patient-disjoint folds. */
function newSettings(
  cells: readonly Cell[],
  options: CrossvalOptions,
  classes: { classNames: string[]; positive: string },
  report: Reporter,
): CrossvalSettings {
  const assignment = assignFolds(
    cells.map((cell) => ({ name: cell.name, relativePath: cell.file })),
    options.folds,
    options.seed,
  );
  const groups = assignment.patients.reduce((a, b) => a + b, 0) + assignment.withoutId;
  if (groups < options.folds)
    throw new UserError(
      `--folds ${options.folds} needs at least ${options.folds} patients, and --input ${options.input} has ${groups}: pass fewer --folds`,
    );
  if (assignment.withoutId === cells.length)
    report.note(
      `no file name in --input ${options.input} carries a patient id: the folds split cells, not patients, so cells of one slide can be on both sides and the figures overstate accuracy on new patients`,
    );
  else if (assignment.withoutId > 0)
    report.note(
      `${assignment.withoutId} cells carry no patient id in their names: each is dealt as a patient of its own`,
    );
  const recipe = Object.fromEntries(PRESET_KEYS.map((key) => [key, options[key]])) as unknown as PresetSettings;
  return {
    format: CROSSVAL_FORMAT,
    version: SETTINGS_VERSION,
    input: options.input,
    folds: options.folds,
    seed: options.seed,
    preset: options.preset,
    recipe,
    classNames: classes.classNames,
    positiveClass: classes.positive,
    groupedBy: assignment.withoutId === cells.length ? 'cell' : 'patient',
    cells: cells.map((cell, i) => ({
      file: cell.file,
      sha256: cell.sha256,
      patient: cell.patient,
      label: cell.label,
      fold: assignment.foldOf[i] + 1,
    })),
  };
}

/**
 * Why `stored` is another run than `wanted` (the first difference, in flags), or undefined when it is the same. A
 * recipe setting the command line left to the same preset is not compared: the run continues with the values it
 * started with, even if the preset's have changed since (as `train --resume` does).
 */
function difference(
  stored: CrossvalSettings,
  wanted: CrossvalSettings,
  given: (key: string) => boolean,
): string | undefined {
  const compared = PRESET_KEYS.filter((key) => given(key) || stored.preset !== wanted.preset);
  const pairs: [string, unknown, unknown][] = [
    ['--folds', stored.folds, wanted.folds],
    ['--seed', stored.seed, wanted.seed],
    ['--positive', stored.positiveClass, wanted.positiveClass],
    ...compared.map((key): [string, unknown, unknown] => [flagName(key), stored.recipe?.[key], wanted.recipe[key]]),
  ];
  for (const [flag, was, now] of pairs)
    if (flagValue(was) !== flagValue(now)) return `was run with ${flag} ${flagValue(was)}, not ${flagValue(now)}`;
  const storedCells = stored.cells ?? [];
  const index = wanted.cells.findIndex(
    (cell, i) =>
      storedCells[i]?.file !== cell.file ||
      storedCells[i]?.sha256 !== cell.sha256 ||
      storedCells[i]?.label !== cell.label,
  );
  if (index >= 0 || storedCells.length !== wanted.cells.length) {
    const at = index >= 0 ? wanted.cells[index].file : storedCells[wanted.cells.length]?.file;
    return `was run on other images (${storedCells.length} cells, this --input has ${wanted.cells.length}; first difference: ${at})`;
  }
  return undefined;
}

async function readSettings(out: string): Promise<CrossvalSettings> {
  const file = path.join(out, CROSSVAL_SETTINGS);
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as CrossvalSettings;
  } catch {
    throw new UserError(`${file} cannot be read: pass --force to start the cross-validation over`);
  }
}

/**
 * Checks --out before anything is written: apart from --input, missing, empty or one of our cross-validations; one
 * that holds another run (other settings or images) needs --force. Returns whether a run is there to continue.
 */
async function checkOut(
  options: CrossvalOptions,
  wanted: CrossvalSettings,
  given: (key: string) => boolean,
): Promise<{ existing: 'none' | 'continue' | 'replace' }> {
  const label = `--out ${options.out}`;
  const state = await checkOutputFolder(options.out, 'crossval', label);
  if (state !== 'ours') return { existing: 'none' };
  if (options.force) return { existing: 'replace' };
  const why = difference(await readSettings(options.out), wanted, given);
  if (why)
    throw new UserError(
      `${label} holds a cross-validation that ${why}: pass --force to start over there, or choose another --out`,
    );
  return { existing: 'continue' };
}

/**
 * Empties a cross-validation checkOut() found ours, for --force: the outputs and fold CSVs, then each fold folder
 * (as a model folder, in the order that keeps it recognised as ours), the settings file last, so a kill part-way
 * leaves a folder still recognised as ours.
 */
async function emptyCrossval(out: string): Promise<void> {
  const names = (await fsp.readdir(out)).filter((name) => name !== CROSSVAL_SETTINGS);
  const isFolder = (name: string) => /^fold-\d+$/.test(name);
  for (const name of names.filter((n) => !isFolder(n)))
    await fsp.rm(path.join(out, name), { recursive: true, force: true });
  for (const name of names.filter(isFolder)) {
    if ((await checkOutputFolder(path.join(out, name), 'model', path.join(out, name))) === 'ours')
      await emptyOurFolder(path.join(out, name));
    await fsp.rm(path.join(out, name), { recursive: true, force: true });
  }
  await fsp.rm(path.join(out, CROSSVAL_SETTINGS), { force: true });
}

/** fold-N.csv's rows, or undefined when the fold is not done. */
async function readFoldRows(out: string, fold: number): Promise<OutOfFoldCell[] | undefined> {
  const file = foldCsv(out, fold);
  const text = await fsp.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const rows = parseCsv(text);
  if (rows[0]?.join(',') !== OOF_HEADER.join(',') || rows.slice(1).some((row) => row.length !== OOF_HEADER.length))
    throw new UserError(`${file} is damaged: pass --force to start the cross-validation over`);
  return rows.slice(1).map(([file_, , patient, label, foldText, probability]) => ({
    file: file_,
    patient,
    label,
    fold: Number(foldText),
    probability: Number(probability),
  }));
}

/** Epochs still to train: none for a fold that is done, the rest of a checkpointed one, all of a new one. */
async function epochsLeft(out: string, folds: number, epochs: number): Promise<number[]> {
  const left: number[] = [];
  for (let fold = 1; fold <= folds; fold++) {
    const done = await fsp.stat(foldCsv(out, fold)).then(
      () => true,
      () => false,
    );
    const dir = foldFolder(out, fold);
    const completed = !done && (await hasCheckpoint(dir)) ? (await loadCheckpointState(dir)).epochsCompleted : 0;
    left.push(done ? 0 : epochs - completed);
  }
  return left;
}

const count = (n: number): string => n.toLocaleString('en-US');
const patientsIn = (cells: readonly Cell[]): number =>
  new Set(cells.filter((c) => c.patient).map((c) => c.patient)).size;

interface RunContext {
  options: CrossvalOptions;
  settings: CrossvalSettings;
  cellsByFile: Map<string, Cell>;
  backend: BackendName;
  report: Reporter;
  signal?: AbortSignal;
  cache: ImageCache;
  /** Epochs left per fold (index fold - 1) and the seconds the epochs of this process took. */
  clock: { left: number[]; seconds: number; epochs: number };
}

const secondsPerEpoch = (clock: RunContext['clock']): number | undefined =>
  clock.epochs > 0 ? clock.seconds / clock.epochs : undefined;
const totalLeft = (clock: RunContext['clock']): number => clock.left.reduce((a, b) => a + b, 0);

/** Trains (or continues) fold `fold`, fits its temperature and writes its held-out probabilities. */
async function runFold(context: RunContext, fold: number): Promise<'done' | 'stopped'> {
  const { options, settings, report } = context;
  const cells = settings.cells.map((entry) => context.cellsByFile.get(entry.file) as Cell);
  const held = cells.filter((_, i) => settings.cells[i].fold === fold);
  const pool = cells.filter((_, i) => settings.cells[i].fold !== fold);
  // build-dataset's validation rule: a tenth of the training cells, as whole patients, seeded per fold.
  const split = splitByPatient(
    pool.map((cell) => ({ ...cell, className: cell.label, relativePath: cell.file })),
    { trainSplit: 1, valSplit: DATASET_DEFAULTS.valSplit, seed: `${options.seed}:fold-${fold}` },
  );
  if (split.validation.length === 0)
    throw new UserError(
      `fold ${fold} has too few training cells (${pool.length}) to set a tenth of their patients aside for validation: use more images or fewer --folds`,
    );
  const labelled = (list: readonly Cell[]): LabelledFile[] =>
    list.map((cell) => ({ path: cell.absolutePath, label: settings.classNames.indexOf(cell.label) }));
  const skipped: string[] = [];
  const sources = openListSources(
    {
      classNames: settings.classNames,
      train: labelled(split.training),
      val: labelled(split.validation),
      test: labelled(held),
    },
    {
      preprocessing: preprocessingOf(options),
      batchSize: options.batchSize,
      seed: options.seed,
      rotation: options.rotation,
      color: options.color,
      cache: context.cache,
      onSkip: (s) => skipped.push(`${s.path} (${s.reason})`),
    },
  );
  const { clock } = context;
  report.result(
    `\nfold ${fold}/${options.folds}: training on ${count(split.training.length)} cells of ${count(patientsIn(split.training))} patients, validating on ${count(split.validation.length)} of ${count(patientsIn(split.validation))}, then predicting its ${count(held.length)} held-out cells of ${count(patientsIn(held))} patients; ${formatTimeLeft(secondsPerEpoch(clock), totalLeft(clock))}`,
  );

  const modelDir = foldFolder(options.out, fold);
  // Checked before anything in it is touched: only then are the leftovers of a killed run ours to clear.
  const state = await checkOutputFolder(modelDir, 'model', modelDir);
  await sweepModelFolder(modelDir);
  const resume = await hasCheckpoint(modelDir);
  // Without a checkpoint nothing of the fold is worth keeping.
  if (!resume && state === 'ours') await emptyOurFolder(modelDir);
  // Every fold's recipe: the run's settings, seed, preset and positive class (a resumed fold follows its checkpoint's).
  const recipe = recipeOf({
    ...settings.recipe,
    seed: options.seed,
    preset: options.preset,
    positive: settings.positiveClass,
  });
  const setup = { data: options.input, modelDir, microBatch: options.microBatch, resume };
  const { model, result } = await trainOrResume(recipe, setup, sources, {
    backend: context.backend,
    report,
    signal: context.signal,
    onEpochEnd: (info) => {
      clock.seconds += info.seconds;
      clock.epochs++;
      clock.left[fold - 1] = Math.max(0, clock.left[fold - 1] - 1);
      report.note(
        `crossval: fold ${fold}/${options.folds}, epoch ${info.epoch + 1}/${settings.recipe.epochs} done; ${formatTimeLeft(secondsPerEpoch(clock), totalLeft(clock))}`,
      );
    },
  });
  try {
    if (skipped.length)
      report.note(
        `fold ${fold}: skipped ${skipped.length} undecodable images: ${skipped.slice(0, 3).join('; ')}${skipped.length > 3 ? '; ...' : ''}`,
      );
    if (result.stoppedEarly) return 'stopped';
    const fit = await calibrateTemperature(model, sources.val, modelDir);
    report.result(`fold ${fold}: ${formatTemperatureFit(fit, 'its validation patients')}`);
    const predictions = await predictProbabilities(model, sources.test, undefined, {
      temperature: fit.applied ? fit.temperature : undefined,
    });
    const files = predictionFiles(sources.test, predictions);
    if (!files) throw new Error(`fold ${fold}: the predictions do not line up with the held-out files`);
    const positiveIndex = settings.classNames.indexOf(settings.positiveClass);
    const byPath = new Map(held.map((cell) => [cell.absolutePath, cell]));
    let csv = csvLine(OOF_HEADER);
    const rows: OutOfFoldCell[] = files.map((file, row) => {
      const cell = byPath.get(file) as Cell;
      const probability = predictions.probabilities[row * predictions.classes + positiveIndex];
      csv += csvLine([cell.file, cell.sha256, cell.patient, cell.label, fold, probability]);
      return { file: cell.file, patient: cell.patient, label: cell.label, fold, probability };
    });
    // Last: its presence is what makes the fold done.
    await writeFileAtomic(foldCsv(options.out, fold), csv);
    clock.left[fold - 1] = 0;
    const rule = { fold, threshold: thresholdInForce(undefined, await loadMetadata(modelDir)).threshold };
    report.result(`fold ${fold}: ${formatFoldFigures(foldFigures(rows, rule, settings.positiveClass))}`);
    return 'done';
  } finally {
    model.dispose();
  }
}

/** The folds of `out` that are done (their fold-N.csv written): their out-of-fold rows and their models' rules. */
async function readFinishedFolds(out: string, folds: number): Promise<{ rows: OutOfFoldCell[]; models: FoldModel[] }> {
  const rows: OutOfFoldCell[] = [];
  const models: FoldModel[] = [];
  for (let fold = 1; fold <= folds; fold++) {
    const foldRows = await readFoldRows(out, fold);
    if (!foldRows) continue;
    rows.push(...foldRows);
    const metadata = await loadMetadata(foldFolder(out, fold));
    models.push({
      fold,
      threshold: thresholdInForce(undefined, metadata).threshold,
      ...(metadata.temperature === undefined ? {} : { temperature: metadata.temperature }),
    });
  }
  return { rows, models };
}

const classesOfSettings = (settings: CrossvalSettings): { positive: string; negative: string } => ({
  positive: settings.positiveClass,
  negative: settings.classNames.find((name) => name !== settings.positiveClass) as string,
});

/**
 * The figures of the folds a cross-validation in `out` has finished so far (undefined before the first), for a
 * look at a run that is still going: the same figures the last fold's summary gives, over fewer patients.
 */
export async function crossvalSoFar(out: string): Promise<CrossvalFigures | undefined> {
  const settings = await readSettings(out);
  const { rows, models } = await readFinishedFolds(out, settings.folds);
  return models.length === 0 ? undefined : crossvalFigures(rows, models, classesOfSettings(settings));
}

/**
 * Two cross-validations in `outA` and `outB` compared on the folds both have finished (undefined before one such
 * fold): for choosing between two recipes on the same patients. Refuses runs of other cells or other folds.
 */
export async function compareCrossvalRuns(outA: string, outB: string): Promise<CrossvalComparison | undefined> {
  const [settingsA, settingsB] = await Promise.all([readSettings(outA), readSettings(outB)]);
  const foldOf = (settings: CrossvalSettings) => new Map(settings.cells.map((cell) => [cell.sha256, cell.fold]));
  const foldsB = foldOf(settingsB);
  const sameCells =
    settingsA.cells.length === settingsB.cells.length &&
    settingsA.positiveClass === settingsB.positiveClass &&
    settingsA.cells.every((cell) => foldsB.get(cell.sha256) === cell.fold);
  if (!sameCells)
    throw new UserError(
      `${outA} and ${outB} are cross-validations of other cells, folds or positive classes: compare runs made with the same --input, --folds, --seed and --positive`,
    );
  const [a, b] = await Promise.all([
    readFinishedFolds(outA, settingsA.folds),
    readFinishedFolds(outB, settingsB.folds),
  ]);
  const common = a.models.filter((model) => b.models.some((other) => other.fold === model.fold));
  return common.length === 0
    ? undefined
    : compareCrossvals(
        { cells: a.rows, models: a.models },
        { cells: b.rows, models: b.models },
        classesOfSettings(settingsA),
      );
}

/** After the last fold: oof.csv, the figures (crossval.json), the ROC plot and the report. */
async function summarise(context: RunContext): Promise<CrossvalFigures> {
  const { options, settings, report } = context;
  const { rows, models } = await readFinishedFolds(options.out, options.folds);
  rows.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const sha = new Map(settings.cells.map((cell) => [cell.file, cell.sha256]));
  let oof = csvLine(OOF_HEADER);
  for (const row of rows)
    oof += csvLine([row.file, sha.get(row.file) ?? '', row.patient, row.label, row.fold, row.probability]);
  const out = (name: string) => path.join(options.out, name);
  await writeFileAtomic(out(CROSSVAL_FILES.oof), oof);
  const missing = settings.cells.length - rows.length;
  if (missing > 0) report.note(`${missing} cells have no out-of-fold probability: their images could not be decoded`);

  const figures = crossvalFigures(rows, models, classesOfSettings(settings));
  const summary = {
    format: CROSSVAL_FORMAT,
    input: options.input,
    folds: options.folds,
    seed: options.seed,
    groupedBy: settings.groupedBy,
    preset: settings.preset,
    settings: settings.recipe,
    classNames: settings.classNames,
    cells: settings.cells.length,
    withoutProbability: missing,
    positiveClass: figures.positiveClass,
    negativeClass: figures.negativeClass,
    perFold: figures.folds,
    mean: figures.mean,
    sd: figures.sd,
    pooled: figures.pooled,
  };
  await writeFileAtomic(out(CROSSVAL_FILES.summary), `${JSON.stringify(summary, null, 2)}\n`);
  const curves = crossvalRocCurves(
    rows,
    models.map((model) => model.fold),
    settings.positiveClass,
  );
  await renderCrossvalRoc(
    curves.folds.map((c, i) => ({ ...c, auc: figures.folds[i].auc })),
    { curve: curves.pooled, auc: figures.pooled.auc },
    `ROC of ${options.folds} folds over ${settings.groupedBy === 'patient' ? 'patients' : 'cells'} (${count(rows.length)} cells)`,
    out(CROSSVAL_FILES.roc),
  );
  report.result(`\n${formatCrossval(figures)}`);
  const review = await writeLabelReview({
    outDir: options.out,
    rows: rows.map((row) => ({ ...row, sha256: sha.get(row.file) ?? '' })),
    classes: classesOfSettings(settings),
    inputDir: options.input,
  });
  report.result(formatLabelReview(review, rows.length));
  report.result(
    `wrote ${out(CROSSVAL_FILES.oof)}, ${out(CROSSVAL_FILES.summary)}, ${out(CROSSVAL_FILES.roc)} and the label review (${path.basename(review.files.suspects)}, ${path.basename(review.files.perPatient)}, ${path.basename(review.files.sheet)}); each fold's model is in ${foldFolder(options.out, 1)} ... ${foldFolder(options.out, options.folds)}`,
  );
  return figures;
}

/** The review's lines for stdout: how many cells the out-of-fold models contradict, and the patients they gather in. */
function formatLabelReview(review: LabelReview, cells: number): string {
  const { positive, negative } = review.thresholds;
  const worst = review.perPatient
    .filter((p) => p.suspects > 0)
    .slice(0, 5)
    .map((p) => `${p.patient} ${p.suspects} of ${p.cells}`);
  return (
    `label review (confident learning; thresholds ${positive.toFixed(2)} and ${negative.toFixed(2)}): ` +
    `${count(review.suspects.length)} of ${count(cells)} cells have a label the out-of-fold model contradicts` +
    (worst.length > 0 ? `; most in ${worst.join(', ')}` : '')
  );
}

/** Runs (or continues) the cross-validation; see the top of this file. */
export async function runCrossval(options: CrossvalOptions, events: CrossvalEvents): Promise<CrossvalOutcome> {
  const { report } = events;
  const resolved = withPreset(options, options.preset, events.given ?? (() => true));
  validate(resolved);
  const inputDir = await checkInput(resolved.input);
  await assertApart(
    [{ path: resolved.out, label: `--out ${resolved.out}` }],
    [{ path: inputDir, label: `--input ${resolved.input}` }],
  );
  // Refuses a foreign --out before the (long) listing.
  await checkOutputFolder(resolved.out, 'crossval', `--out ${resolved.out}`);
  const cells = await listCells(inputDir, resolved, report);
  const classes = classesOf(cells, resolved);
  const wanted = newSettings(cells, resolved, classes, report);
  const given = events.given ?? (() => true);
  const { existing } = await checkOut(resolved, wanted, given);
  const backend = await selectBackend(resolved.backend);
  report.note(backend.message);

  // Nothing was written so far; from here on --out is ours to write.
  let settings = wanted;
  if (existing === 'continue') {
    settings = await readSettings(resolved.out);
    await sweepLeftovers(resolved.out);
  } else {
    if (existing === 'replace') await emptyCrossval(resolved.out);
    await fsp.mkdir(resolved.out, { recursive: true });
    await writeFileAtomic(path.join(resolved.out, CROSSVAL_SETTINGS), `${JSON.stringify(settings, null, 1)}\n`);
  }
  report.result(formatPreset(resolved.preset, settings.recipe));
  const folds = settings.folds;
  report.result(
    `crossval: ${count(cells.length)} unique cells of ${count(patientsIn(cells))} patients in ${settings.classNames.join(', ')} (positive class ${settings.positiveClass}), ${folds} folds over ${settings.groupedBy === 'patient' ? 'whole patients' : 'cells'}${existing === 'continue' ? `; continuing the run in ${resolved.out}` : ''}`,
  );

  const context: RunContext = {
    // A continued run keeps the recipe it started with (difference() let only unchanged or untouched settings by).
    options: { ...resolved, ...settings.recipe },
    settings,
    cellsByFile: new Map(cells.map((cell) => [cell.file, cell])),
    backend: backend.name,
    report,
    cache: new ImageCache(),
    clock: { left: await epochsLeft(resolved.out, folds, settings.recipe.epochs), seconds: 0, epochs: 0 },
  };
  let foldsDone = 0;
  const interrupt = events.interrupt?.();
  try {
    context.signal = interrupt?.signal;
    for (let fold = 1; fold <= folds; fold++) {
      if (await readFoldRows(resolved.out, fold)) {
        report.result(`fold ${fold}/${folds}: done in an earlier run (${foldCsv(resolved.out, fold)})`);
        foldsDone++;
        continue;
      }
      if ((await runFold(context, fold)) === 'stopped') {
        report.result(
          `stopped in fold ${fold} of ${folds}; run the same command again to continue at its last completed epoch`,
        );
        return { stoppedEarly: true, foldsDone };
      }
      foldsDone++;
    }
  } finally {
    interrupt?.release();
  }
  const figures = await summarise(context);
  return { stoppedEarly: false, foldsDone, figures };
}
