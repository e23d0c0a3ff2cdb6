// `malaria evaluate`: the saved model on one split (default: testing), as a report or one JSON object, at a decision
// threshold given, saved with the model, or chosen on the validation split for a target sensitivity. The work is
// evaluateModel (src/workflows/evaluate.ts).
import type { Command } from '@commander-js/extra-typings';
import { DATASET_DEFAULTS } from '../config.js';
import { withFolderLock } from '../io/lock.js';
import { evaluateModel } from '../workflows/evaluate.js';
import { SHEET } from '../report/error-sheet.js';
import { createReporter } from '../report/reporter.js';
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

export function registerEvaluate(program: Command): void {
  declareEvaluate(program).action((flags) => {
    // --json keeps stdout to the one object; everything else goes to stderr.
    const report = createReporter({ json: flags.json });
    const run = () => evaluateModel(flags, report);
    // --save-threshold rewrites metadata.json in the model folder: not while another run writes there.
    return flags.saveThreshold ? withFolderLock(flags.modelDir, `--model-dir ${flags.modelDir}`, run) : run();
  });
}
