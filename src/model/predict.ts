// Class probabilities for every image of an evaluation source, batch by batch, in inference mode.
import path from 'node:path';
import { tf } from '../tf.js';
import { patientIdOf } from '../dataset/patients.js';
import type { BatchSource } from '../input/types.js';
import type { LabelledProbabilities } from '../stats/labelled-probabilities.js';
import { withInferenceNetwork } from './fold-batch-norm.js';
import { batchProbabilities, type InferenceOptions } from './inference.js';

/** Input shape [height, width, channels] of a model with one image input. */
export function imageShape(model: tf.LayersModel): [number, number, number] {
  const shape = model.inputs[0].shape;
  const [height, width, channels] = shape.slice(1);
  if (shape.length !== 4 || !height || !width || !channels) {
    throw new Error(`expected a model with an image input [batch, height, width, channels], got [${shape.join(', ')}]`);
  }
  return [height, width, channels];
}

/** Wraps a batch's pixels (or the slice [start, start + count) of them) as an NHWC tensor for `model`. */
export function batchTensor(x: Float32Array, count: number, shape: [number, number, number], start = 0): tf.Tensor4D {
  const pixels = shape[0] * shape[1] * shape[2];
  if (x.length < (start + count) * pixels) {
    throw new Error(`a batch of ${x.length} floats is too short for ${start + count} images of ${shape.join('x')}`);
  }
  return tf.tensor4d(x.subarray(start * pixels, (start + count) * pixels), [count, ...shape]);
}

/**
 * Runs `model` over every batch of `source` (epoch 0: evaluation sources keep file order) and collects the class
 * probabilities (with the temperature and test-time augmentation of `options`) and true labels. Only one batch's
 * tensors are alive at a time. The network runs with its batch norms folded (fold-batch-norm.ts) where it can.
 */
export async function predictProbabilities(
  model: tf.LayersModel,
  source: BatchSource,
  onBatchEnd?: (done: number, total: number) => void,
  options: InferenceOptions = {},
): Promise<LabelledProbabilities> {
  imageShape(model); // refuses a model without one image input before any batch is read
  const outputShape = model.outputs[0].shape;
  const classes = outputShape[outputShape.length - 1] as number;
  const rows: Float32Array[] = [];
  const labelChunks: Int32Array[] = [];
  let done = 0;
  await withInferenceNetwork(model, async (network) => {
    for await (const batch of source.batches(0)) {
      rows.push(await batchProbabilities(tf, network, batch.x, batch.size, options));
      labelChunks.push(batch.labels.slice(0, batch.size));
      onBatchEnd?.(++done, source.batchesPerEpoch);
    }
  });
  const n = labelChunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const probabilities = new Float32Array(n * classes);
  const labels = new Int32Array(n);
  let offset = 0;
  rows.forEach((row, i) => {
    probabilities.set(row, offset * classes);
    labels.set(labelChunks[i], offset);
    offset += labelChunks[i].length;
  });
  return { probabilities, labels, classes };
}

/**
 * The image file of each row of `predictions` made by `predictProbabilities` on an evaluation source (one that keeps
 * file order): its files in order, less those it skipped (an undecodable image is dropped from its batch). undefined
 * when they do not line up with the rows' labels, so a mismatch can never pair a row with the wrong file.
 */
export function predictionFiles(
  source: Pick<BatchSource, 'files'> & { skipped?: readonly { path: string }[] },
  predictions: Pick<LabelledProbabilities, 'labels'>,
): string[] | undefined {
  const skipped = new Set(source.skipped?.map((s) => s.path));
  const kept = skipped.size === 0 ? source.files : source.files.filter((file) => !skipped.has(file.path));
  const { labels } = predictions;
  if (kept.length !== labels.length || kept.some((file, i) => file.label !== labels[i])) return undefined;
  return kept.map((file) => file.path);
}

/**
 * The patient of each row of `predictions` on an evaluation source (see predictionFiles), from the file names;
 * undefined for a file without a patient id, and for all rows when they cannot be matched with files.
 */
export function predictionPatients(
  source: Pick<BatchSource, 'files'> & { skipped?: readonly { path: string }[] },
  predictions: Pick<LabelledProbabilities, 'labels'>,
): (string | undefined)[] | undefined {
  const files = predictionFiles(source, predictions);
  return files && patientsOfFiles(files);
}

/** The patient id in each file's name (undefined for a name without one). */
export const patientsOfFiles = (files: readonly string[]): (string | undefined)[] =>
  files.map((file) => patientIdOf(path.basename(file)));

/** Keras' categorical cross-entropy (probabilities clipped to [1e-7, 1 - 1e-7]) and accuracy, averaged over images. */
export function crossEntropyAndAccuracy(predictions: LabelledProbabilities): { loss: number; accuracy: number } {
  const { probabilities, labels, classes } = predictions;
  const epsilon = 1e-7;
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = probabilities.subarray(i * classes, (i + 1) * classes);
    let sum = 0;
    let best = 0;
    for (let c = 0; c < classes; c++) {
      sum += row[c];
      if (row[c] > row[best]) best = c;
    }
    const p = Math.min(1 - epsilon, Math.max(epsilon, row[labels[i]] / sum));
    loss -= Math.log(p);
    if (best === labels[i]) correct++;
  }
  return { loss: loss / labels.length, accuracy: correct / labels.length };
}
