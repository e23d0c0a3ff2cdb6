// `malaria evaluate`: the saved model on one split (default: testing), as a report or one JSON object, at a decision
// threshold given, saved with the model, or chosen on the validation split for a target sensitivity.
import type { Command } from '@commander-js/extra-typings';
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import { checkOutputFiles, type OutputFile } from '../io/output-file.js';
import { withFolderLock } from '../io/lock.js';
import { selectBackend } from '../backends/select.js';
import { chooseThreshold, inferenceUsed, predictSplit, type SplitPredictions } from '../workflows/evaluate.js';
import { loadModel, METADATA_FILE, updateMetadata } from '../model/io.js';
import {
  evaluatePredictions,
  evaluationJson,
  predictedLabels,
  formatCalibration,
  formatScreening,
  rocData,
} from '../stats/evaluation.js';
import { formatClassificationReport, formatConfusionMatrix } from '../report/classification-report.js';
import type { ClassLabels } from '../stats/positive-class.js';
import { renderReliabilityPlot, renderRocPlot } from '../report/plot.js';
import { createReporter, type Reporter } from '../report/reporter.js';
import { misclassifiedCells, renderErrorSheet, SHEET } from '../report/error-sheet.js';
import {
  backendOption,
  batchSizeOption,
  dataOption,
  jsonOption,
  modelDirOption,
  targetSensitivity,
  thresholdOption,
  ttaOption,
} from './options.js';

const VALIDATION_SPLIT = DATASET_DEFAULTS.splits.val;

/** The `evaluate` command with its flags; their types come from these definitions. */
function declareEvaluate(program: Command) {
  return program
    .command('evaluate')
    .description('evaluate the saved model on one split of the data set')
    .addOption(dataOption())
    .option(
      '--split <name>',
      'split folder to evaluate (training, validation or testing)',
      DATASET_DEFAULTS.splits.test as string,
    )
    .addOption(modelDirOption())
    .addOption(batchSizeOption())
    .addOption(backendOption())
    .addOption(thresholdOption())
    .option(
      '--target-sensitivity <s>',
      `choose the largest threshold that reaches sensitivity s on <data>/${VALIDATION_SPLIT}, and apply it`,
      targetSensitivity,
    )
    .option(
      '--save-threshold',
      "store the threshold used in the model folder's metadata.json (the default of evaluate and predict)",
    )
    .option('--roc <png>', 'write the ROC curve with the operating point to this PNG')
    .option(
      '--calibration <png>',
      'write the reliability diagram (accuracy against confidence, with the ECE) to this PNG',
    )
    .option(
      '--errors <png>',
      `write the misclassified cells to this PNG, the most confident mistakes first (up to ${SHEET.limit}), each with its true class and patient`,
    )
    .option('--force', 'replace a --roc, --calibration or --errors file even when this tool did not write it')
    .addOption(ttaOption())
    .addOption(jsonOption('one JSON object with the metrics'));
}

type EvaluateFlags = ReturnType<ReturnType<typeof declareEvaluate>['opts']>;

export function registerEvaluate(program: Command): void {
  // --save-threshold rewrites metadata.json in the model folder: not while another run writes there.
  declareEvaluate(program).action((flags) =>
    flags.saveThreshold
      ? withFolderLock(flags.modelDir, `--model-dir ${flags.modelDir}`, () => runEvaluate(flags))
      : runEvaluate(flags),
  );
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
  flags: EvaluateFlags,
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

async function runEvaluate(flags: EvaluateFlags): Promise<void> {
  validate(flags);
  const outputs = await checkOutputs(flags);
  // --json keeps stdout to the one object; everything else goes to stderr.
  const report = createReporter({ json: flags.json });
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
    predictedLabels(predictions, classes, threshold),
    predictions.files,
    classes.classNames,
  );
  const drawn = await renderErrorSheet(cells, split, file);
  report.detail(`error sheet written to ${file.path} (${drawn} of ${cells.length} misclassified cells)`);
}
