// `malaria evaluate`'s work: a saved model's probabilities on one split folder, and the decision threshold in force
// (the flag, the model's saved one, 0.5, or one chosen on the validation split for a target sensitivity).
import path from 'node:path';
import { DATASET_DEFAULTS } from '../config.js';
import type { tf } from '../tf.js';
import { createBatchSource } from '../input/batches.js';
import { formatThresholdSelection, selectThreshold, type ThresholdOrigin } from '../stats/evaluation.js';
import { positiveIndexOf } from '../stats/positive-class.js';
import type { Reporter } from '../report/reporter.js';
import type { InferenceOptions } from '../model/inference.js';
import type { ModelMetadata } from '../model/io.js';
import { patientsOfFiles, predictionFiles, predictProbabilities, type Predictions } from '../model/predict.js';
import { thresholdInForce } from '../model/threshold.js';

const VALIDATION_SPLIT = DATASET_DEFAULTS.splits.val;

/** Where the split folders are and how the model runs over them. */
export interface SplitInference {
  data: string;
  batchSize: number;
  tta?: boolean;
}

/** How probabilities are produced: the model's temperature (if it has one) and --tta. */
export const inferenceUsed = (metadata: ModelMetadata, options: { tta?: boolean }): InferenceOptions => ({
  temperature: metadata.temperature,
  tta: options.tta,
});

/** Predictions on a split folder, with the file and patient of each row when known. */
export interface SplitPredictions extends Predictions {
  /** Image file per row; absent when rows cannot be matched with files. */
  files?: string[];
  /** Patient id per row (undefined: none in the file name); absent when rows cannot be matched with files. */
  patients?: (string | undefined)[];
}

/** Class probabilities for every image of `<data>/<split>`, with a progress bar; undecodable files are noted. */
export async function predictSplit(
  model: tf.LayersModel,
  metadata: ModelMetadata,
  options: SplitInference,
  split: string,
  report: Reporter,
): Promise<SplitPredictions> {
  const source = await createBatchSource({
    dir: path.join(options.data, split),
    imageSize: metadata.imageSize,
    resize: metadata.resize,
    stain: metadata.stain,
    stainReference: metadata.stainReference,
    batchSize: options.batchSize,
    augment: false,
    shuffle: false,
    seed: 0,
    classNames: metadata.classNames,
    onSkip: (s) => report.note(`skipped ${s.path}: ${s.reason}`),
  });
  const bar = report.progress({ total: source.batchesPerEpoch, label: `${split}: ${source.files.length} images` });
  const predictions = await predictProbabilities(
    model,
    source,
    (done) => bar.update(done),
    inferenceUsed(metadata, options),
  );
  bar.finish();
  if (source.skipped.length > 0) {
    const skipped = source.skipped.length === 1 ? '1 file' : `${source.skipped.length} files`;
    report.note(
      `set aside ${skipped} of ${split} that do not decode as images (named above); evaluated the other ${predictions.labels.length}`,
    );
  }
  const files = predictionFiles(source, predictions);
  return { ...predictions, files, patients: files && patientsOfFiles(files) };
}

/**
 * The threshold to evaluate `split` at: with `targetSensitivity`, the largest that reaches it on the validation
 * split (its selection is a detail of the result; choosing on the split being evaluated is noted as optimistic);
 * else the one in force.
 */
export async function chooseThreshold(
  model: tf.LayersModel,
  metadata: ModelMetadata,
  options: SplitInference & { split: string; threshold?: number; targetSensitivity?: number },
  report: Reporter,
): Promise<{ threshold: number; origin: ThresholdOrigin }> {
  if (options.targetSensitivity === undefined) {
    const inForce = thresholdInForce(options.threshold, metadata);
    return { threshold: inForce.threshold, origin: { source: inForce.source } };
  }
  const validation = await predictSplit(model, metadata, options, VALIDATION_SPLIT, report);
  const selection = selectThreshold(validation, metadata, options.targetSensitivity, VALIDATION_SPLIT);
  report.detail(formatThresholdSelection(selection, metadata.classNames[positiveIndexOf(metadata)]));
  if (options.split === VALIDATION_SPLIT) {
    report.note(
      `note: the threshold was chosen on ${VALIDATION_SPLIT}, the split being evaluated; its figures are optimistic`,
    );
  }
  return { threshold: selection.threshold, origin: { source: 'validation', selection } };
}
