// `malaria evaluate`: the saved model on one split (default: testing), as a report or one JSON object.
import type { Command } from 'commander';
import path from 'node:path';
import { DATASET_DEFAULTS, TRAIN_DEFAULTS } from '../config.js';
import { parseBackendChoice, selectBackend, type BackendChoice } from '../tf.js';
import { createBatchSource } from '../data/batches.js';
import { loadModel } from '../model/io.js';
import { predictProbabilities } from '../model/predict.js';
import { evaluatePredictions, evaluationJson, formatScreening } from '../report/evaluation.js';
import { formatClassificationReport, formatConfusionMatrix } from '../report/classification-report.js';
import { ProgressBar } from '../report/progress.js';
import { positiveInt } from './options.js';

interface EvaluateFlags {
  data: string;
  split: string;
  modelDir: string;
  batchSize: number;
  backend: BackendChoice;
  json?: boolean;
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description('evaluate the saved model on one split of the data set')
    .option('--data <dir>', 'folder holding the split folders', DATASET_DEFAULTS.base)
    .option('--split <name>', 'split folder to evaluate (training, validation or testing)', DATASET_DEFAULTS.splits.test)
    .option('--model-dir <dir>', 'folder of the trained model', TRAIN_DEFAULTS.modelDir)
    .option('--batch-size <n>', 'images per inference batch', positiveInt, TRAIN_DEFAULTS.batchSize)
    .option('--backend <name>', 'auto, tensorflow, wasm or cpu', parseBackendChoice, 'auto')
    .option('--json', 'print one JSON object with the metrics and nothing else')
    .action((flags: EvaluateFlags) => runEvaluate(flags));
}

async function runEvaluate(flags: EvaluateFlags): Promise<void> {
  // --json keeps stdout to the one object; everything else goes to stderr.
  const say = flags.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const backend = await selectBackend(flags.backend);
  say(backend.message);
  const { model, metadata } = await loadModel(flags.modelDir);
  try {
    const source = await createBatchSource({
      dir: path.join(flags.data, flags.split),
      imageSize: metadata.imageSize,
      batchSize: flags.batchSize,
      augment: false,
      shuffle: false,
      seed: 0,
      classNames: metadata.classNames,
      onSkip: (s) => console.error(`skipped ${s.path}: ${s.reason}`),
    });
    const bar = new ProgressBar({ total: source.batchesPerEpoch, label: `evaluating ${source.files.length} images` });
    const predictions = await predictProbabilities(model, source, (done) => bar.update(done));
    bar.finish();
    const evaluation = evaluatePredictions(predictions, metadata.classNames);
    if (flags.json) {
      console.log(JSON.stringify(evaluationJson(evaluation)));
      return;
    }
    console.log(`\n${formatClassificationReport(evaluation.metrics)}`);
    console.log(`confusion matrix (rows: true class, columns: predicted)\n${formatConfusionMatrix(evaluation.metrics.labels, evaluation.metrics.confusion)}`);
    if (evaluation.screening) console.log(formatScreening(evaluation.screening));
  } finally {
    model.dispose();
  }
}
