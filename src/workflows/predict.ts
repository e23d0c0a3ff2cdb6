// `malaria predict`'s work: classifies image files and folders with a saved (or exported) model, as a table or a
// JSON array, with the slide summary when asked.
import { UserError } from '../errors.js';
import { selectBackend, type BackendChoice } from '../backends/select.js';
import { loadModel } from '../model/io.js';
import { classifyFiles, gatherImageFiles, isFailed, slideSummary } from '../model/classify.js';
import { thresholdInForce } from '../model/threshold.js';
import { formatInference, thresholdOrigin } from '../report/evaluation.js';
import { positiveIndexOf } from '../stats/positive-class.js';
import { formatSlideSummary } from '../report/parasitemia.js';
import { formatClassifiedCounts, formatPredictionTable, plural, predictionsJson } from '../report/predictions.js';
import type { Reporter } from '../report/reporter.js';

export interface PredictOptions {
  modelDir: string;
  backend: BackendChoice;
  batchSize: number;
  threshold?: number;
  tta?: boolean;
  /** One JSON array on stdout instead of the table. */
  json?: boolean;
  /** Then the slide summary (on stderr with json). */
  summary?: boolean;
}

/** Classifies the images among `paths`; files that could not be classified are counted, not thrown. */
export async function predictFiles(
  paths: string[],
  flags: PredictOptions,
  report: Reporter,
): Promise<{ classified: number; failed: number }> {
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
    if (failed > 0) report.note(`malaria: ${failed} of ${plural(results.length, 'file')} could not be classified`);
    return { classified: results.length - failed, failed };
  } finally {
    model.dispose();
  }
}
