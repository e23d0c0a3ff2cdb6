// `malaria predict`: classifies image files and folders with a saved (or exported) model, for use in the field.
// The work is predictFiles (src/workflows/predict.ts).
import type { Command } from '@commander-js/extra-typings';
import { predictFiles } from '../workflows/predict.js';
import { createReporter } from '../report/reporter.js';
import { backendOption, batchSizeOption, jsonOption, modelDirOption, thresholdOption, ttaOption } from './options.js';

/** The `predict` command with its flags; their types come from these definitions. */
function declarePredict(program: Command) {
  return program
    .command('predict')
    .description('classify image files (and the images inside folders) as Parasitized or Uninfected')
    .argument('<paths...>', 'image files or folders of images')
    .addOption(modelDirOption())
    .addOption(thresholdOption())
    .addOption(batchSizeOption())
    .addOption(backendOption())
    .addOption(ttaOption())
    .addOption(jsonOption('one JSON array of {"file", "label", "probability"} (or {"file", "error"})'))
    .option(
      '--summary',
      'then the slide summary: cells, parasitized, parasitemia with its 95% interval (to stderr with --json)',
    );
}

export function registerPredict(program: Command): void {
  declarePredict(program).action(async (paths, flags) => {
    // stdout holds only the table or the JSON array; everything else goes to stderr.
    const { failed } = await predictFiles(paths, flags, createReporter({ json: flags.json }));
    if (failed > 0) process.exitCode = 1;
  });
}
