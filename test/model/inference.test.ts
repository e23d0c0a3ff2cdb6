import { beforeAll, describe, expect, it } from 'vitest';
import seedrandom from 'seedrandom';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { batchProbabilities, dihedralViews, TTA_VIEWS } from '../../src/model/inference.js';
import { applyTemperature } from '../../src/model/temperature.js';
import { IMAGE_SIZE, spreadOutputs, tinyResNet } from '../support/models.js';

const PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3;

beforeAll(async () => {
  await selectBackend('cpu');
});

/** `count` images of uniform noise: no symmetry, so every flip and rotation gives the network a different input. */
function noiseImages(count: number, seed: string): Float32Array {
  const random = seedrandom(seed);
  return Float32Array.from({ length: count * PIXELS }, () => random());
}

/** Each image turned a quarter, counter-clockwise, by index arithmetic (independent of the code under test). */
function rotate90(x: Float32Array, count: number, size = IMAGE_SIZE): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < count; i++) {
    for (let row = 0; row < size; row++) {
      for (let col = 0; col < size; col++) {
        // out[row][col] = in[col][size - 1 - row]
        const from = i * PIXELS + (col * size + (size - 1 - row)) * 3;
        const to = i * PIXELS + (row * size + col) * 3;
        for (let c = 0; c < 3; c++) out[to + c] = x[from + c];
      }
    }
  }
  return out;
}

const maxDifference = (a: Float32Array, b: Float32Array): number =>
  Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));

describe('dihedralViews', () => {
  it('gives the 8 distinct flips and right-angle rotations of a non-square-symmetric image', () => {
    const values = tf.tidy(() =>
      dihedralViews(tf, tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1])).map((v) => Array.from(v.dataSync()).join('')),
    );
    // The 2x2 image [[1, 2], [3, 4]] has exactly 8 images under the symmetries of the square.
    expect(new Set(values).size).toBe(TTA_VIEWS);
    expect(values[0]).toBe('1234');
    expect(values).toContain('3142'); // a quarter turn clockwise
    expect(values).toContain('2413'); // a quarter turn counter-clockwise
  });
});

describe('batchProbabilities', () => {
  let model: tf.LayersModel;
  let x: Float32Array;
  const count = 6;

  beforeAll(() => {
    model = tinyResNet(5);
    x = noiseImages(count, 'tta');
    // An untrained network says ~0.5 for everything; spread out, a changed input moves the output visibly.
    spreadOutputs(model, x, count);
  });

  it('with --tta gives the same probabilities for an image turned by 90 degrees; without it, not', async () => {
    const turned = rotate90(x, count);
    const plain = maxDifference(
      await batchProbabilities(tf, model, x, count),
      await batchProbabilities(tf, model, turned, count),
    );
    const tta = maxDifference(
      await batchProbabilities(tf, model, x, count, { tta: true }),
      await batchProbabilities(tf, model, turned, count, { tta: true }),
    );
    expect(plain).toBeGreaterThan(1e-2);
    expect(tta).toBeLessThan(1e-5);
  });

  it('averages the 8 views (rows still sum to 1) and applies the temperature after', async () => {
    const tta = await batchProbabilities(tf, model, x, count, { tta: true });
    for (let i = 0; i < count; i++) expect(tta[2 * i] + tta[2 * i + 1]).toBeCloseTo(1, 5);
    const plain = await batchProbabilities(tf, model, x, count);
    const warmed = await batchProbabilities(tf, model, x, count, { temperature: 2.5 });
    expect(maxDifference(warmed, plain)).toBeGreaterThan(1e-2);
    expect(maxDifference(warmed, applyTemperature(plain, 2, 2.5))).toBeLessThan(1e-7);
  });

  it('leaves no tensor behind, with or without test-time augmentation', async () => {
    await batchProbabilities(tf, model, x, count, { tta: true });
    const before = tf.memory().numTensors;
    for (let round = 0; round < 3; round++) {
      await batchProbabilities(tf, model, x, count, { tta: true, temperature: 2 });
      await batchProbabilities(tf, model, x, count);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
