import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend, tf } from '../../src/tf.js';
import { crossEntropyAndAccuracy, predictProbabilities } from '../../src/model/predict.js';
import { IMAGE_SIZE, tinyResNet } from '../support/models.js';
import { MemorySource, syntheticImages } from '../support/sources.js';

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
