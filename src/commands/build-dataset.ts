// `malaria build-dataset`: flags -> buildDataset() -> summary on stdout (progress bars on stderr).
import { Option, type Command } from '@commander-js/extra-typings';
import { DATASET_DEFAULTS } from '../config.js';
import { buildDataset } from '../dataset/build.js';
import { formatBuildSummary } from '../report/build-summary.js';
import { withFolderLock } from '../io/lock.js';
import { createReporter } from '../report/reporter.js';
import { fraction, nonNegativeInt } from './options.js';

export function registerBuildDataset(program: Command): void {
  program
    .command('build-dataset')
    .description('split the raw class folders into training/validation/testing copies and write splits.csv')
    .option('--input <dir>', 'folder holding one subfolder of images per class', DATASET_DEFAULTS.input as string)
    .option(
      '--output <dir>',
      'folder that receives training/, validation/, testing/ and splits.csv',
      DATASET_DEFAULTS.base as string,
    )
    .option(
      '--train-split <f>',
      'fraction of all images for training + validation (the rest is testing)',
      fraction,
      DATASET_DEFAULTS.trainSplit,
    )
    .option(
      '--val-split <f>',
      'fraction of the training part held out for validation',
      fraction,
      DATASET_DEFAULTS.valSplit,
    )
    .option('--seed <n>', 'seed of the shuffle (same seed, same split)', nonNegativeInt, DATASET_DEFAULTS.seed)
    .option('--force', 'replace an existing split in the output folder', false)
    .addOption(
      new Option('--group-by <unit>', 'split individual cells, or whole patients so that no patient is in two splits')
        .choices(['cell', 'patient'] as const)
        .default('cell' as const),
    )
    .action(async (flags) => {
      const report = createReporter();
      const result = await withFolderLock(flags.output, `--output ${flags.output}`, () =>
        buildDataset({ ...flags, progress: (total, label) => report.progress({ total, label }) }),
      );
      for (const line of formatBuildSummary(result)) report.result(line);
    });
}
