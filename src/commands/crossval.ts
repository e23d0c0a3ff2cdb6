// `malaria crossval`: k-fold cross-validation over whole patients, every fold a `train` run with the same recipe
// flags. The work is runCrossval (src/workflows/crossval.ts); this file declares the flags and handles Ctrl-C.
import type { Command } from '@commander-js/extra-typings';
import { DATASET_DEFAULTS } from '../config.js';
import { abortOnInterrupt } from '../io/interrupt.js';
import { withFolderLock } from '../io/lock.js';
import { createReporter } from '../report/reporter.js';
import { checkFolds, runCrossval } from '../workflows/crossval.js';
import { addTrainingRunOptions, positiveInt, positiveOption, presetOption } from './options.js';

const DEFAULT_INPUT = DATASET_DEFAULTS.input as string;
const DEFAULT_OUT = `${DATASET_DEFAULTS.base}/crossval`;

function declareCrossval(program: Command) {
  const command = program
    .command('crossval')
    .description(
      'k-fold cross-validation over whole patients: each fold trains on the others and predicts its own patients, so every cell gets one out-of-fold probability',
    )
    .option(
      '--input <dir>',
      'folder of class folders of cell images (read where they lie, never copied)',
      DEFAULT_INPUT,
    )
    .option(
      '--out <dir>',
      "where the folds' models, oof.csv, crossval.json and roc.png go; running the same command again continues there",
      DEFAULT_OUT,
    )
    .option(
      '--folds <k>',
      'number of folds (patients are dealt into k folds of about equal cell counts)',
      (value: string) => checkFolds(positiveInt(value)),
      5,
    )
    .addOption(presetOption());
  return addTrainingRunOptions(command)
    .addOption(positiveOption())
    .option('--force', 'start over in an --out that holds a cross-validation (with other settings or images)');
}

export function registerCrossval(program: Command): void {
  declareCrossval(program).action(async (flags, command) => {
    const report = createReporter();
    const given = (key: string) => command.getOptionValueSource(key as never) === 'cli';
    const interrupt = () =>
      abortOnInterrupt(() =>
        report.note(
          '\nstopping: every completed epoch stays saved; run the same command again to continue (Ctrl-C again to quit at once)',
        ),
      );
    // One run at a time in --out: two would train the same folds into the same model folders.
    const outcome = await withFolderLock(flags.out, `--out ${flags.out}`, () =>
      runCrossval(flags, { report, given, interrupt }),
    );
    if (outcome.stoppedEarly) process.exitCode = 130;
  });
}
