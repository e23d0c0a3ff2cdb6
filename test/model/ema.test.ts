import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { WeightAverage } from '../../src/model/ema.js';
import { noBatchNormModel, weightValues } from '../support/models.js';
import { trackModels } from '../support/tensors.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

const track = trackModels();

/** Adds `delta` to every weight of the model, as a training step would move them. */
function shift(model: tf.LayersModel, delta: number): void {
  const moved = model.weights.map((w) => tf.add(w.read(), delta));
  model.setWeights(moved);
  tf.dispose(moved);
}

describe('WeightAverage', () => {
  it('follows avg = d * avg + (1 - d) * w with d = min(decay, (1 + t) / (10 + t)), from the weights it started with', async () => {
    const model = track(noBatchNormModel(5));
    const start = weightValues(model).map((values) => Float32Array.from(values));
    const average = new WeightAverage(model, 0.5);
    shift(model, 1); // step 1: d = min(0.5, 2 / 11) = 2/11
    average.update();
    shift(model, 1); // step 2: d = min(0.5, 3 / 12) = 0.25
    average.update();
    const afterOne = 9 / 11; // (2/11) * 0 + (9/11) * 1: the offset from the start, with the weights at +1
    const expected = 0.25 * afterOne + 0.75 * 2;
    const trained = weightValues(model);
    await average.withAveraged(async () => {
      const averaged = weightValues(model);
      averaged.forEach((values, i) =>
        values.forEach((value, k) => expect(value - start[i][k]).toBeCloseTo(expected, 5)),
      );
    });
    // The training weights are back, unchanged.
    expect(weightValues(model)).toEqual(trained);
    expect(average.stepCount).toBe(2);
    average.install();
    average.dispose();
    // After install the model keeps the average even though the average object is gone.
    weightValues(model).forEach((values, i) =>
      values.forEach((value, k) => expect(value - start[i][k]).toBeCloseTo(expected, 5)),
    );
  });

  it('uses the plain decay once (1 + t) / (10 + t) exceeds it, and restores from saved tensors and a step count', () => {
    const model = track(noBatchNormModel(6));
    const start = weightValues(model);
    const saved = model.weights.map((w) => tf.zerosLike(w.read()));
    const average = new WeightAverage(model, 0.9, 1000, saved);
    tf.dispose(saved);
    average.update(); // d = 0.9: 0.9 * 0 + 0.1 * w
    average.weights().forEach(({ tensor }, i) => {
      const values = tensor.dataSync();
      values.forEach((value, k) => expect(value).toBeCloseTo(0.1 * start[i][k], 6));
    });
    expect(average.stepCount).toBe(1001);
    average.dispose();
  });

  it('keeps the tensor count flat over updates and swaps, and frees everything on dispose', async () => {
    const model = track(noBatchNormModel(7));
    const before = tf.memory().numTensors;
    const average = new WeightAverage(model, 0.99);
    const created = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      shift(model, 0.1);
      average.update();
      await average.withAveraged(async () => undefined);
      expect(tf.memory().numTensors).toBe(created);
    }
    average.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a decay outside (0, 1) and a saved average of another model', () => {
    const model = track(noBatchNormModel(8));
    expect(() => new WeightAverage(model, 1)).toThrow(RangeError);
    expect(() => new WeightAverage(model, 0)).toThrow(RangeError);
    expect(() => new WeightAverage(model, 0.9, 0, [])).toThrow(/saved average has 0 weights/);
  });
});
