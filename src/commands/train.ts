// `malaria train`: the tutorial's ResNet on <data>/training, validated on <data>/validation, reported on <data>/testing.
// The work is runTraining (src/workflows/train.ts); this file declares the flags and handles Ctrl-C.
import type { Command } from '@commander-js/extra-typings';
import { TRAIN_DEFAULTS } from '../config.js';
import { abortOnInterrupt } from '../io/interrupt.js';
import { withFolderLock } from '../io/lock.js';
import { runTraining } from '../workflows/train.js';
import { createReporter } from '../report/reporter.js';
import { addTrainingRunOptions, dataOption, modelDirOption, positiveOption, presetOption } from './options.js';

/** The `train` command with its flags; their types come from these definitions. */
function declareTrain(program: Command) {
  const command = program
    .command('train')
    .description(
      'train the ResNet on <data>/training (validating on <data>/validation), save it, report on <data>/testing',
    )
    .addOption(presetOption())
    .addOption(dataOption())
    .addOption(modelDirOption('write'))
    .option('--plot <png>', 'loss/accuracy plot to write', TRAIN_DEFAULTS.plot as string);
  return addTrainingRunOptions(command)
    .addOption(positiveOption())
    .option(
      '--exclude <csv>',
      "leave out of training the files this CSV lists (a label review's suspects.csv), matched by its sha256 column, else by file name (and label); never moved or deleted; validation and testing are not filtered; the list's sha256 is saved in metadata.json",
    )
    .option('--resume', 'continue the interrupted run in --model-dir from its last completed epoch')
    .option(
      '--force',
      'replace a model already in --model-dir, and a --plot file even when this tool did not write it',
    );
}

type ParsedFlags = ReturnType<ReturnType<typeof declareTrain>['opts']>;

export function registerTrain(program: Command): void {
  declareTrain(program).action(async (flags, command) => {
    const report = createReporter();
    const given = (key: string) => command.getOptionValueSource(key as keyof ParsedFlags) === 'cli';
    const interrupt = () =>
      abortOnInterrupt(() =>
        report.note(
          '\nstopping: the last completed epoch stays saved; continue with `malaria train --resume` (Ctrl-C again to quit at once)',
        ),
      );
    // One run at a time in a model folder: a second one would interleave checkpoints and --force could empty it.
    const outcome = await withFolderLock(flags.modelDir, `--model-dir ${flags.modelDir}`, () =>
      runTraining(flags, { report, given, interrupt }),
    );
    if (outcome.stoppedEarly) process.exitCode = 130;
  });
}
