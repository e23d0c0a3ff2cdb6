// `malaria evaluate`'s work: a saved model's probabilities on one split folder, the decision threshold in force
// (the flag, the model's saved one, 0.5, or one chosen on the validation split for a target sensitivity), the
// report or JSON object, and the plots and sheet asked for.
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import type { tf } from '../tf.js';
import { selectBackend, type BackendChoice } from '../backends/select.js';
import { checkOutputFiles, type OutputFile } from '../io/output-file.js';
import { createBatchSource } from '../input/batches.js';
import {
  decidedClasses,
  evaluatePredictions,
  rocData,
  selectThreshold,
  type ThresholdOrigin,
} from '../stats/evaluation.js';
import { evaluationJson, formatCalibration, formatScreening, formatThresholdSelection } from '../report/evaluation.js';
import { positiveIndexOf, type ClassLabels } from '../stats/positive-class.js';
import { formatClassificationReport, formatConfusionMatrix } from '../report/classification-report.js';
import { misclassifiedCells, renderErrorSheet } from '../report/error-sheet.js';
import { renderReliabilityPlot, renderRocPlot } from '../report/plot.js';
import type { Reporter } from '../report/reporter.js';
import type { InferenceOptions } from '../model/inference.js';
import { loadModel, METADATA_FILE, updateMetadata, type ModelMetadata } from '../model/io.js';
import { patientsOfFiles, predictionFiles, predictProbabilities } from '../model/predict.js';
import type { LabelledProbabilities } from '../stats/labelled-probabilities.js';
import { thresholdInForce } from '../model/threshold.js';
import { preprocessingOf } from '../input/preprocessing.js';

const VALIDATION_SPLIT = DATASET_DEFAULTS.splits.val;

/** Where the split folders are and how the model runs over them. */
export interface SplitInference {
  data: string;
  batchSize: number;
  tta?: boolean;
}

/** How probabilities are produced: the model's temperature (if it has one) and --tta. */
const inferenceUsed = (metadata: ModelMetadata, options: { tta?: boolean }): InferenceOptions => ({
  temperature: metadata.temperature,
  tta: options.tta,
});

/** Predictions on a split folder, with the file and patient of each row when known. */
export interface SplitPredictions extends LabelledProbabilities {
  /** Image file per row; absent when rows cannot be matched with files. */
  files?: string[];
  /** Patient id per row (undefined: none in the file name); absent when rows cannot be matched with files. */
  patients?: (string | undefined)[];
}

/** Class probabilities for every image of `<data>/<split>`, with a progress bar; undecodable files are noted. */
export async function predictSplit(
  model: tf.LayersModel,
  metadata: ModelMetadata,
  options: SplitInference,
  split: string,
  report: Reporter,
): Promise<SplitPredictions> {
  const source = await createBatchSource({
    dir: path.join(options.data, split),
    preprocessing: preprocessingOf(metadata),
    batchSize: options.batchSize,
    augment: false,
    shuffle: false,
    seed: 0,
    classNames: metadata.classNames,
    onSkip: (s) => report.note(`skipped ${s.path}: ${s.reason}`),
  });
  const bar = report.progress({ total: source.batchesPerEpoch, label: `${split}: ${source.files.length} images` });
  const predictions = await predictProbabilities(
    model,
    source,
    (done) => bar.update(done),
    inferenceUsed(metadata, options),
  );
  bar.finish();
  if (source.skipped.length > 0) {
    const skipped = source.skipped.length === 1 ? '1 file' : `${source.skipped.length} files`;
    report.note(
      `set aside ${skipped} of ${split} that do not decode as images (named above); evaluated the other ${predictions.labels.length}`,
    );
  }
  const files = predictionFiles(source, predictions);
  return { ...predictions, files, patients: files && patientsOfFiles(files) };
}

/**
 * The threshold to evaluate `split` at: with `targetSensitivity`, the largest that reaches it on the validation
 * split (its selection is a detail of the result; choosing on the split being evaluated is noted as optimistic);
 * else the one in force.
 */
async function chooseThreshold(
  model: tf.LayersModel,
  metadata: ModelMetadata,
  options: SplitInference & { split: string; threshold?: number; targetSensitivity?: number },
  report: Reporter,
): Promise<{ threshold: number; origin: ThresholdOrigin }> {
  if (options.targetSensitivity === undefined) {
    const inForce = thresholdInForce(options.threshold, metadata);
    return { threshold: inForce.threshold, origin: { source: inForce.source } };
  }
  const validation = await predictSplit(model, metadata, options, VALIDATION_SPLIT, report);
  const selection = selectThreshold(validation, metadata, options.targetSensitivity, VALIDATION_SPLIT);
  report.detail(formatThresholdSelection(selection, metadata.classNames[positiveIndexOf(metadata)]));
  if (options.split === VALIDATION_SPLIT) {
    report.note(
      `note: the threshold was chosen on ${VALIDATION_SPLIT}, the split being evaluated; its figures are optimistic`,
    );
  }
  return { threshold: selection.threshold, origin: { source: 'validation', selection } };
}

/** What `evaluate` is asked: the split, the threshold's origin, the outputs (evaluateModel). */
export interface EvaluateOptions extends SplitInference {
  modelDir: string;
  split: string;
  backend: BackendChoice;
  threshold?: number;
  targetSensitivity?: number;
  /** Store the threshold used in metadata.json. */
  saveThreshold?: boolean;
  /** PNG files to write: the ROC curve, the reliability diagram, the error sheet. */
  roc?: string;
  calibration?: string;
  errors?: string;
  /** Replace those files even when this tool did not write them. */
  force?: boolean;
  /** One JSON object on stdout instead of the report. */
  json?: boolean;
}

function validate(flags: EvaluateOptions): void {
  if (flags.threshold !== undefined && flags.targetSensitivity !== undefined) {
    throw new UserError('--threshold and --target-sensitivity both set the threshold: pass one of them');
  }
  if (flags.saveThreshold && flags.threshold === undefined && flags.targetSensitivity === undefined) {
    throw new UserError('--save-threshold needs a threshold to save: add --threshold <p> or --target-sensitivity <s>');
  }
  const splitDir = path.join(flags.data, flags.split);
  if (!fs.existsSync(splitDir)) {
    throw new UserError(
      `data folder ${splitDir} not found: run \`malaria build-dataset\` first, or pass --data and --split`,
    );
  }
}

/**
 * The PNG files this run writes, checked before any work: each may be written (missing, ours, or --force) and none
 * lies in a split folder of --data or in --model-dir.
 */
async function checkOutputs(
  flags: EvaluateOptions,
): Promise<{ roc?: OutputFile; calibration?: OutputFile; errors?: OutputFile }> {
  const named = (flag: string, file: string | undefined): OutputFile | undefined =>
    file === undefined ? undefined : { path: file, label: `${flag} ${file}`, force: flags.force };
  const outputs = {
    roc: named('--roc', flags.roc),
    calibration: named('--calibration', flags.calibration),
    errors: named('--errors', flags.errors),
  };
  // Every split, not only the one evaluated: a file left in one is read as a cell, or makes the split not ours.
  const splits = [...new Set([...Object.values(DATASET_DEFAULTS.splits), flags.split])].map((split) => ({
    path: path.join(flags.data, split),
    label: `the ${split} split of --data ${flags.data}`,
  }));
  await checkOutputFiles(
    Object.values(outputs).filter((output) => output !== undefined),
    [...splits, { path: flags.modelDir, label: `--model-dir ${flags.modelDir}` }],
  );
  return outputs;
}

export async function evaluateModel(flags: EvaluateOptions, report: Reporter): Promise<void> {
  validate(flags);
  const outputs = await checkOutputs(flags);
  const backend = await selectBackend(flags.backend);
  // A model folder that is not ours is one line and nothing else.
  const { model, metadata } = await loadModel(flags.modelDir);
  report.note(backend.message);
  try {
    const twoClasses = metadata.classNames.length === 2;
    if (!twoClasses && (flags.threshold !== undefined || flags.targetSensitivity !== undefined || flags.roc)) {
      throw new UserError(
        `--threshold, --target-sensitivity and --roc need a two-class model; ${flags.modelDir} has ${metadata.classNames.length} classes`,
      );
    }
    const { threshold, origin } = await chooseThreshold(model, metadata, flags, report);

    const predictions = await predictSplit(model, metadata, flags, flags.split, report);
    const evaluation = evaluatePredictions(predictions, metadata, threshold, {
      clusters: predictions.patients,
    });
    const inference = inferenceUsed(metadata, flags);
    if (flags.json) {
      report.result(JSON.stringify(evaluationJson(evaluation, twoClasses ? origin : undefined, inference)));
    } else {
      report.result(`\n${formatClassificationReport(evaluation.metrics)}`);
      report.result(
        `confusion matrix (rows: true class, columns: predicted)\n${formatConfusionMatrix(evaluation.metrics.labels, evaluation.metrics.confusion)}`,
      );
      if (evaluation.screening) report.result(formatScreening(evaluation.screening, origin.source));
      report.result(formatCalibration(evaluation.calibration, inference));
    }
    if (outputs.calibration) {
      await renderReliabilityPlot(evaluation.calibration, `Reliability diagram, ${flags.split}`, outputs.calibration);
      report.detail(`reliability diagram written to ${flags.calibration}`);
    }
    if (outputs.roc) {
      const roc = rocData(predictions, metadata, threshold);
      await renderRocPlot(
        roc.curve,
        { auc: roc.auc, operatingPoint: roc.operatingPoint, title: `ROC curve, ${flags.split}` },
        outputs.roc,
      );
      report.detail(`ROC curve written to ${flags.roc}`);
    }
    if (outputs.errors) {
      await writeErrorSheet(predictions, metadata, threshold, flags.split, outputs.errors, report);
    }
    if (flags.saveThreshold) {
      await updateMetadata(flags.modelDir, { threshold });
      report.detail(`threshold ${threshold} saved in ${path.join(flags.modelDir, METADATA_FILE)}`);
    }
  } finally {
    model.dispose();
  }
}

/** `--errors`: the contact sheet of the cells decided wrongly at `threshold`. */
async function writeErrorSheet(
  predictions: SplitPredictions,
  classes: ClassLabels,
  threshold: number,
  split: string,
  file: OutputFile,
  report: Reporter,
): Promise<void> {
  if (!predictions.files) {
    report.note(`no error sheet: the images of ${split} could not be matched with their predictions`);
    return;
  }
  const cells = misclassifiedCells(
    predictions,
    decidedClasses(predictions, classes, threshold),
    predictions.files,
    classes.classNames,
  );
  const drawn = await renderErrorSheet(cells, split, file);
  report.detail(`error sheet written to ${file.path} (${drawn} of ${cells.length} misclassified cells)`);
}
