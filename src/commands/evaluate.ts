// `malaria evaluate`: the saved model on one split (default: testing), as a report or one JSON object, at a decision
// threshold given, saved with the model, or chosen on the validation split for a target sensitivity.
import type { Command } from '@commander-js/extra-typings';
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import { selectBackend, type tf } from '../tf.js';
import { createBatchSource } from '../data/batches.js';
import { loadModel, METADATA_FILE, updateMetadata, type ModelMetadata } from '../model/io.js';
import { predictProbabilities, type Predictions } from '../model/predict.js';
import type { InferenceOptions } from '../model/inference.js';
import {
  evaluatePredictions,
  evaluationJson,
  formatCalibration,
  formatScreening,
  formatThresholdSelection,
  positiveIndexOf,
  rocData,
  selectThreshold,
  type ThresholdOrigin,
} from '../report/evaluation.js';
import { formatClassificationReport, formatConfusionMatrix } from '../report/classification-report.js';
import { renderReliabilityPlot, renderRocPlot } from '../report/plot.js';
import { createReporter, type Reporter } from '../report/reporter.js';
import { backendOption, batchSizeOption, dataOption, jsonOption, modelDirOption, targetSensitivity, thresholdOption, ttaOption } from './options.js';
import { thresholdInForce } from './threshold.js';

const VALIDATION_SPLIT = DATASET_DEFAULTS.splits.val;

/** The `evaluate` command with its flags; their types come from these definitions. */
function declareEvaluate(program: Command) {
  return program
    .command('evaluate')
    .description('evaluate the saved model on one split of the data set')
    .addOption(dataOption())
    .option('--split <name>', 'split folder to evaluate (training, validation or testing)', DATASET_DEFAULTS.splits.test as string)
    .addOption(modelDirOption())
    .addOption(batchSizeOption())
    .addOption(backendOption())
    .addOption(thresholdOption())
    .option('--target-sensitivity <s>', `choose the largest threshold that reaches sensitivity s on <data>/${VALIDATION_SPLIT}, and apply it`, targetSensitivity)
    .option('--save-threshold', 'store the threshold used in the model folder\'s metadata.json (the default of evaluate and predict)')
    .option('--roc <png>', 'write the ROC curve with the operating point to this PNG')
    .option('--calibration <png>', 'write the reliability diagram (accuracy against confidence, with the ECE) to this PNG')
    .addOption(ttaOption())
    .addOption(jsonOption('one JSON object with the metrics'));
}

type EvaluateFlags = ReturnType<ReturnType<typeof declareEvaluate>['opts']>;

export function registerEvaluate(program: Command): void {
  declareEvaluate(program).action((flags) => runEvaluate(flags));
}

function validate(flags: EvaluateFlags): void {
  if (flags.threshold !== undefined && flags.targetSensitivity !== undefined) {
    throw new UserError('--threshold and --target-sensitivity both set the threshold: pass one of them');
  }
  if (flags.saveThreshold && flags.threshold === undefined && flags.targetSensitivity === undefined) {
    throw new UserError('--save-threshold needs a threshold to save: add --threshold <p> or --target-sensitivity <s>');
  }
  const splitDir = path.join(flags.data, flags.split);
  if (!fs.existsSync(splitDir)) {
    throw new UserError(`data folder ${splitDir} not found: run \`malaria build-dataset\` first, or pass --data and --split`);
  }
}

/** How probabilities are produced: the model's temperature (if it has one) and --tta. */
const inferenceUsed = (metadata: ModelMetadata, flags: EvaluateFlags): InferenceOptions => ({ temperature: metadata.temperature, tta: flags.tta });

/** Class probabilities for every image of `<data>/<split>`, with a progress bar on stderr. */
async function predictSplit(model: tf.LayersModel, metadata: ModelMetadata, flags: EvaluateFlags, split: string, report: Reporter): Promise<Predictions> {
  const source = await createBatchSource({
    dir: path.join(flags.data, split),
    imageSize: metadata.imageSize,
    batchSize: flags.batchSize,
    augment: false,
    shuffle: false,
    seed: 0,
    classNames: metadata.classNames,
    onSkip: (s) => report.note(`skipped ${s.path}: ${s.reason}`),
  });
  const bar = report.progress({ total: source.batchesPerEpoch, label: `${split}: ${source.files.length} images` });
  const predictions = await predictProbabilities(model, source, (done) => bar.update(done), inferenceUsed(metadata, flags));
  bar.finish();
  if (source.skipped.length > 0) {
    const files = source.skipped.length === 1 ? '1 file' : `${source.skipped.length} files`;
    report.note(`set aside ${files} of ${split} that do not decode as images (named above); evaluated the other ${predictions.labels.length}`);
  }
  return predictions;
}

async function runEvaluate(flags: EvaluateFlags): Promise<void> {
  validate(flags);
  // --json keeps stdout to the one object; everything else goes to stderr.
  const report = createReporter({ json: flags.json });
  const backend = await selectBackend(flags.backend);
  // A model folder that is not ours is one line and nothing else.
  const { model, metadata } = await loadModel(flags.modelDir);
  report.note(backend.message);
  try {
    const twoClasses = metadata.classNames.length === 2;
    if (!twoClasses && (flags.threshold !== undefined || flags.targetSensitivity !== undefined || flags.roc)) {
      throw new UserError(`--threshold, --target-sensitivity and --roc need a two-class model; ${flags.modelDir} has ${metadata.classNames.length} classes`);
    }
    const positiveLabel = metadata.classNames[positiveIndexOf(metadata.classNames)];
    let origin: ThresholdOrigin;
    let threshold: number;
    if (flags.targetSensitivity !== undefined) {
      const validation = await predictSplit(model, metadata, flags, VALIDATION_SPLIT, report);
      const selection = selectThreshold(validation, metadata.classNames, flags.targetSensitivity, VALIDATION_SPLIT);
      report.detail(formatThresholdSelection(selection, positiveLabel));
      if (flags.split === VALIDATION_SPLIT) {
        report.note(`note: the threshold was chosen on ${VALIDATION_SPLIT}, the split being evaluated; its figures are optimistic`);
      }
      origin = { source: 'validation', selection };
      threshold = selection.threshold;
    } else {
      const inForce = thresholdInForce(flags.threshold, metadata);
      origin = { source: inForce.source };
      threshold = inForce.threshold;
    }

    const predictions = await predictSplit(model, metadata, flags, flags.split, report);
    const evaluation = evaluatePredictions(predictions, metadata.classNames, threshold);
    const inference = inferenceUsed(metadata, flags);
    if (flags.json) {
      report.result(JSON.stringify(evaluationJson(evaluation, twoClasses ? origin : undefined, inference)));
    } else {
      report.result(`\n${formatClassificationReport(evaluation.metrics)}`);
      report.result(`confusion matrix (rows: true class, columns: predicted)\n${formatConfusionMatrix(evaluation.metrics.labels, evaluation.metrics.confusion)}`);
      if (evaluation.screening) report.result(formatScreening(evaluation.screening, origin.source));
      report.result(formatCalibration(evaluation.calibration, inference));
    }
    if (flags.calibration) {
      await renderReliabilityPlot(evaluation.calibration, `Reliability diagram, ${flags.split}`, flags.calibration);
      report.detail(`reliability diagram written to ${flags.calibration}`);
    }
    if (flags.roc) {
      const roc = rocData(predictions, metadata.classNames, threshold);
      await renderRocPlot(roc.curve, { auc: roc.auc, operatingPoint: roc.operatingPoint, title: `ROC curve, ${flags.split}` }, flags.roc);
      report.detail(`ROC curve written to ${flags.roc}`);
    }
    if (flags.saveThreshold) {
      await updateMetadata(flags.modelDir, { threshold });
      report.detail(`threshold ${threshold} saved in ${path.join(flags.modelDir, METADATA_FILE)}`);
    }
  } finally {
    model.dispose();
  }
}
