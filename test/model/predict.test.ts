import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { batchSourceFromListing } from '../../src/input/batches.js';
import { DecodeError } from '../../src/input/decode.js';
import {
  crossEntropyAndAccuracy,
  predictionFiles,
  predictionPatients,
  predictProbabilities,
} from '../../src/model/predict.js';
import { IMAGE_SIZE, tinyResNet } from '../support/models.js';
import { MemorySource, syntheticImages } from '../support/sources.js';
import { preprocessingOf } from '../../src/input/preprocessing.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('predictProbabilities', () => {
  it('returns one probability row per image in source order, with the true labels, and frees its tensors', async () => {
    const model = tinyResNet(4);
    try {
      // 10 images in batches of 4: the last batch is short.
      const { x, labels } = syntheticImages(10, 9);
      const source = new MemorySource(x, labels, IMAGE_SIZE, 4);
      const progress: number[] = [];
      const before = tf.memory().numTensors;
      const predictions = await predictProbabilities(model, source, (done) => progress.push(done));
      expect(tf.memory().numTensors).toBe(before);
      expect(progress).toEqual([1, 2, 3]);
      expect(predictions.classes).toBe(2);
      expect(predictions.probabilities).toHaveLength(20);
      expect(Array.from(predictions.labels)).toEqual(Array.from(labels));
      // The same numbers as one predict over all ten images (inference mode: batch composition does not matter).
      const whole = tf.tidy(() => model.predict(tf.tensor4d(x, [10, IMAGE_SIZE, IMAGE_SIZE, 3])) as tf.Tensor);
      const expected = whole.dataSync();
      whole.dispose();
      predictions.probabilities.forEach((p, i) => expect(p).toBeCloseTo(expected[i], 5));
      for (let i = 0; i < 10; i++)
        expect(predictions.probabilities[2 * i] + predictions.probabilities[2 * i + 1]).toBeCloseTo(1, 5);
    } finally {
      model.dispose();
    }
  });
});

describe('predictionFiles and predictionPatients', () => {
  // Parasitized first (label 0): 4 cells of two patients and one file without an id; Uninfected: 3 cells.
  const names = [
    ['Parasitized', 'C10P1ThinF_IMG_20150101_000001_cell_1.png'],
    ['Parasitized', 'C10P1ThinF_IMG_20150101_000001_cell_2.png'],
    ['Parasitized', 'C20P2thinF_IMG_20150101_000002_cell_1.png'],
    ['Parasitized', 'cell.png'],
    ['Uninfected', 'C20P2thinF_IMG_20150101_000002_cell_9.png'],
    ['Uninfected', 'C30P3ThinF_IMG_20150101_000003_cell_1.png'],
    ['Uninfected', 'C30P3ThinF_IMG_20150101_000003_cell_2.png'],
  ];
  const files = names.map(([folder, name]) => ({
    path: `/split/${folder}/${name}`,
    label: folder === 'Parasitized' ? 0 : 1,
  }));
  const size = 2;

  /** An evaluation source over `files` whose image i is filled with the value i + 1; `broken` files fail. */
  function source(broken: number[]) {
    return batchSourceFromListing(
      { classNames: ['Parasitized', 'Uninfected'], files, nonImages: [], rejected: [] },
      {
        preprocessing: preprocessingOf({ imageSize: size }),
        batchSize: 3,
        augment: false,
        shuffle: false,
        seed: 0,
        decode: async (file) => {
          const index = files.findIndex((f) => f.path === file);
          if (broken.includes(index)) throw new DecodeError(file, 'synthetic failure');
          return new Uint8Array(size * size * 3).fill(index + 1);
        },
      },
    );
  }

  it('pairs every row with the file it came from, undecodable files left out', async () => {
    for (const broken of [[], [1], [0, 4, 6]]) {
      const evaluation = source(broken);
      // What predictProbabilities sees: the batches of epoch 0, and which file each row holds (its pixel value).
      const labels: number[] = [];
      const rowFiles: string[] = [];
      for await (const batch of evaluation.batches(0)) {
        const pixels = batch.x.length / batch.size;
        for (let row = 0; row < batch.size; row++) {
          labels.push(batch.labels[row]);
          rowFiles.push(files[Math.round(batch.x[row * pixels] * 255) - 1].path);
        }
      }
      expect(labels).toHaveLength(files.length - broken.length);
      expect(predictionFiles(evaluation, { labels: Int32Array.from(labels) }), `broken ${broken}`).toEqual(rowFiles);
    }
  });

  it('reads the patients from the file names, and gives up when rows and files do not line up', async () => {
    const evaluation = source([3]);
    for await (const batch of evaluation.batches(0)) void batch;
    const labels = Int32Array.from([0, 0, 0, 1, 1, 1]);
    expect(predictionPatients(evaluation, { labels })).toEqual(['C10P1', 'C10P1', 'C20P2', 'C20P2', 'C30P3', 'C30P3']);
    // A file without an id has no patient (the bootstrap resamples it alone).
    expect(predictionPatients(source([]), { labels: Int32Array.from([0, 0, 0, 0, 1, 1, 1]) })).toEqual([
      'C10P1',
      'C10P1',
      'C20P2',
      undefined,
      'C20P2',
      'C30P3',
      'C30P3',
    ]);
    // One row too few, or the labels in another order: no pairing at all.
    expect(predictionFiles(evaluation, { labels: labels.subarray(1) })).toBeUndefined();
    expect(predictionFiles(evaluation, { labels: Int32Array.from([0, 0, 1, 0, 1, 1]) })).toBeUndefined();
  });
});

describe('crossEntropyAndAccuracy', () => {
  it('averages -log p(true class) and counts argmax hits', () => {
    const result = crossEntropyAndAccuracy({
      probabilities: Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.6, 0.4]),
      labels: Int32Array.from([0, 1, 1]),
      classes: 2,
    });
    expect(result.loss).toBeCloseTo(-(Math.log(0.9) + Math.log(0.8) + Math.log(0.4)) / 3, 6);
    expect(result.accuracy).toBeCloseTo(2 / 3, 12);
  });

  it('clips a zero probability like Keras instead of returning infinity', () => {
    const result = crossEntropyAndAccuracy({
      probabilities: Float32Array.from([1, 0]),
      labels: Int32Array.from([1]),
      classes: 2,
    });
    expect(result.loss).toBeCloseTo(-Math.log(1e-7), 6);
    expect(result.accuracy).toBe(0);
  });
});
