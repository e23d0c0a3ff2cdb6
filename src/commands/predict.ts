// `malaria predict`: classifies image files and folders with a saved (or exported) model, for use in the field.
import type { Command } from '@commander-js/extra-typings';
import { UserError } from '../errors.js';
import { selectBackend } from '../tf.js';
import { loadModel } from '../model/io.js';
import { classifyFiles, gatherImageFiles, isFailed, type ClassifiedFile, type FileResult } from '../model/classify.js';
import { formatInference, positiveIndexOf, thresholdOrigin } from '../report/evaluation.js';
import { formatSlideSummary, summariseSlide } from '../report/parasitemia.js';
import { ProgressBar } from '../report/progress.js';
import { backendOption, batchSizeOption, jsonOption, modelDirOption, thresholdOption, ttaOption } from './options.js';
import { thresholdInForce } from './threshold.js';

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
    .option('--summary', 'then the slide summary: cells, parasitized, parasitemia with its 95% interval (to stderr with --json)');
}

type PredictFlags = ReturnType<ReturnType<typeof declarePredict>['opts']>;

export function registerPredict(program: Command): void {
  declarePredict(program).action((paths, flags) => runPredict(paths, flags));
}

const round = (value: number): number => Number(value.toFixed(6));

/** The --json entries: exactly {file, label, probability} or {file, error}. */
export function predictionsJson(results: readonly FileResult[]): Record<string, unknown>[] {
  return results.map((r) => (isFailed(r) ? { file: r.file, error: r.error } : { file: r.file, label: r.label, probability: round(r.probability) }));
}

/** A plain table: file, label, probability; failed files show their error instead. */
export function formatPredictionTable(results: readonly FileResult[]): string {
  const fileWidth = Math.max(4, ...results.map((r) => r.file.length));
  const labelWidth = Math.max(5, ...results.map((r) => (isFailed(r) ? 0 : r.label.length)));
  const lines = [`${'file'.padEnd(fileWidth)}  ${'label'.padEnd(labelWidth)}  probability`];
  for (const r of results) {
    lines.push(isFailed(r) ? `${r.file.padEnd(fileWidth)}  error: ${r.error}` : `${r.file.padEnd(fileWidth)}  ${r.label.padEnd(labelWidth)}  ${r.probability.toFixed(4)}`);
  }
  return lines.join('\n');
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

async function runPredict(paths: string[], flags: PredictFlags): Promise<void> {
  // stdout holds only the table or the JSON array; everything else goes to stderr.
  const backend = await selectBackend(flags.backend);
  // A model folder that is not ours is one line and nothing else.
  const { model, metadata } = await loadModel(flags.modelDir);
  console.error(backend.message);
  try {
    const twoClasses = metadata.classNames.length === 2;
    if (!twoClasses && flags.threshold !== undefined) {
      throw new UserError(`--threshold needs a two-class model; ${flags.modelDir} has ${metadata.classNames.length} classes`);
    }
    if (!twoClasses && flags.summary) {
      throw new UserError(`--summary needs a two-class model; ${flags.modelDir} has ${metadata.classNames.length} classes`);
    }
    const { threshold, source } = thresholdInForce(flags.threshold, metadata);
    if (twoClasses) {
      const positive = metadata.classNames[positiveIndexOf(metadata.classNames)];
      console.error(`${positive} when P(${positive}) >= ${threshold} (${thresholdOrigin(source)})`);
    }
    if (metadata.temperature !== undefined || flags.tta) {
      console.error(`probabilities: ${formatInference({ temperature: metadata.temperature, tta: flags.tta })}`);
    }
    const { items, skipped } = await gatherImageFiles(paths);
    if (items.length === 0) {
      throw new UserError(`no image files found in ${paths.join(', ')}${skipped.length ? ` (${plural(skipped.length, 'other file')} skipped)` : ''}`);
    }
    const bar = new ProgressBar({ total: items.length, label: `classifying ${plural(items.length, 'file')}` });
    const results = await classifyFiles(model, metadata, items, { batchSize: flags.batchSize, threshold, tta: flags.tta, onProgress: (done) => bar.update(done) });
    bar.finish();
    console.log(flags.json ? JSON.stringify(predictionsJson(results)) : formatPredictionTable(results));
    if (flags.summary) {
      const positiveIndex = positiveIndexOf(metadata.classNames);
      const pPositive = results.filter((r): r is ClassifiedFile => !isFailed(r)).map((r) => r.probabilities[positiveIndex]);
      const lines = formatSlideSummary(summariseSlide(pPositive, threshold), metadata.classNames[positiveIndex]);
      // stdout stays one JSON array under --json.
      (flags.json ? console.error : console.log)(`\n${lines.join('\n')}`);
    }

    const failed = results.filter(isFailed).length;
    const counts = metadata.classNames.map((name) => `${results.filter((r) => !isFailed(r) && r.label === name).length} ${name}`);
    const skippedNote = skipped.length ? `; ${plural(skipped.length, 'non-image file')} skipped` : '';
    console.error(`${plural(results.length - failed, 'image')} classified (${counts.join(', ')}); ${failed} failed${skippedNote}`);
    if (failed > 0) {
      console.error(`malaria: ${failed} of ${plural(results.length, 'file')} could not be classified`);
      process.exitCode = 1;
    }
  } finally {
    model.dispose();
  }
}
