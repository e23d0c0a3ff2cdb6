// `malaria predict`: classifies image files and folders with a saved (or exported) model, for use in the field.
import type { Command } from '@commander-js/extra-typings';
import { UserError } from '../errors.js';
import { selectBackend } from '../backends/select.js';
import { loadModel } from '../model/io.js';
import { classifyFiles, gatherImageFiles, isFailed, slideSummary } from '../model/classify.js';
import { formatInference, thresholdOrigin } from '../stats/evaluation.js';
import { positiveIndexOf } from '../stats/positive-class.js';
import { formatSlideSummary } from '../stats/parasitemia.js';
import { formatClassifiedCounts, formatPredictionTable, plural, predictionsJson } from '../report/predictions.js';
import { createReporter } from '../report/reporter.js';
import { backendOption, batchSizeOption, jsonOption, modelDirOption, thresholdOption, ttaOption } from './options.js';
import { thresholdInForce } from '../model/threshold.js';

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

type PredictFlags = ReturnType<ReturnType<typeof declarePredict>['opts']>;

export function registerPredict(program: Command): void {
  declarePredict(program).action((paths, flags) => runPredict(paths, flags));
}

async function runPredict(paths: string[], flags: PredictFlags): Promise<void> {
  // stdout holds only the table or the JSON array; everything else goes to stderr.
  const report = createReporter({ json: flags.json });
  const backend = await selectBackend(flags.backend);
  // A model folder that is not ours is one line and nothing else.
  const { model, metadata } = await loadModel(flags.modelDir);
  report.note(backend.message);
  try {
    const twoClasses = metadata.classNames.length === 2;
    if (!twoClasses && flags.threshold !== undefined) {
      throw new UserError(
        `--threshold needs a two-class model; ${flags.modelDir} has ${metadata.classNames.length} classes`,
      );
    }
    if (!twoClasses && flags.summary) {
      throw new UserError(
        `--summary needs a two-class model; ${flags.modelDir} has ${metadata.classNames.length} classes`,
      );
    }
    const { threshold, source } = thresholdInForce(flags.threshold, metadata);
    if (twoClasses) {
      const positive = metadata.classNames[positiveIndexOf(metadata)];
      report.note(`${positive} when P(${positive}) >= ${threshold} (${thresholdOrigin(source)})`);
    }
    if (metadata.temperature !== undefined || flags.tta) {
      report.note(`probabilities: ${formatInference({ temperature: metadata.temperature, tta: flags.tta })}`);
    }
    const { items, skipped } = await gatherImageFiles(paths);
    if (items.length === 0) {
      throw new UserError(
        `no image files found in ${paths.join(', ')}${skipped.length ? ` (${plural(skipped.length, 'other file')} skipped)` : ''}`,
      );
    }
    const bar = report.progress({ total: items.length, label: `classifying ${plural(items.length, 'file')}` });
    const results = await classifyFiles(model, metadata, items, {
      batchSize: flags.batchSize,
      threshold,
      tta: flags.tta,
      onProgress: (done) => bar.update(done),
    });
    bar.finish();
    report.result(flags.json ? JSON.stringify(predictionsJson(results)) : formatPredictionTable(results));
    // stdout stays one JSON array under --json.
    if (flags.summary)
      report.detail(
        `\n${formatSlideSummary(slideSummary(results, metadata, threshold), metadata.classNames[positiveIndexOf(metadata)]).join('\n')}`,
      );
    report.note(formatClassifiedCounts(results, metadata.classNames, skipped.length));
    const failed = results.filter(isFailed).length;
    if (failed > 0) {
      report.note(`malaria: ${failed} of ${plural(results.length, 'file')} could not be classified`);
      process.exitCode = 1;
    }
  } finally {
    model.dispose();
  }
}
