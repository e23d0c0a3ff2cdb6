// AvgPoolGrad on wasm (non-overlapping pools by block copies, others by wasm's own kernel) against the cpu backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { loadBothBackends, randomHost } from '../support/backends.js';

interface PoolCase {
  name: string;
  input: [number, number, number, number];
  filterSize: [number, number];
  strides: [number, number];
  pad: 'valid' | 'same';
}

const CASES: PoolCase[] = [
  // The ResNet's global average pooling (the laptop preset's last activation, fewer images and channels).
  { name: 'global 12x12', input: [3, 12, 12, 5], filterSize: [12, 12], strides: [12, 12], pad: 'valid' },
  { name: '2x2 windows', input: [2, 6, 6, 3], filterSize: [2, 2], strides: [2, 2], pad: 'valid' },
  // 'valid' drops the last row and the last column: they get no gradient.
  { name: 'leftover rows and columns', input: [2, 7, 5, 2], filterSize: [3, 2], strides: [3, 2], pad: 'valid' },
  { name: 'one channel, non-square', input: [1, 4, 9, 1], filterSize: [4, 3], strides: [4, 3], pad: 'same' },
  // Overlapping or padded windows: wasm's own kernel.
  { name: 'overlapping 3x3', input: [2, 5, 5, 2], filterSize: [3, 3], strides: [1, 1], pad: 'same' },
  { name: 'padded windows', input: [1, 5, 5, 2], filterSize: [2, 2], strides: [2, 2], pad: 'same' },
];

function poolGradOn(backend: 'wasm' | 'cpu', c: PoolCase) {
  tf.setBackend(backend);
  const input = tf.tensor4d(randomHost(c.input, `pool/${c.name}/x`).values, c.input);
  const outShape = tf.tidy(() => tf.avgPool(input, c.filterSize, c.strides, c.pad).shape);
  const dy = tf.tensor(randomHost(outShape, `pool/${c.name}/dy`).values, outShape);
  const dx = tf.engine().runKernel(
    'AvgPoolGrad',
    { dy, input },
    {
      filterSize: c.filterSize,
      strides: c.strides,
      pad: c.pad,
    },
  ) as tf.Tensor;
  const result = { shape: dx.shape.slice(), values: Array.from(dx.dataSync()) };
  tf.dispose([input, dy, dx]);
  return result;
}

describe('wasm AvgPoolGrad', () => {
  beforeAll(loadBothBackends);

  for (const c of CASES) {
    it(`matches cpu: ${c.name}`, async () => {
      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const expected = poolGradOn('cpu', c);
      const actual = poolGradOn('wasm', c);
      expect(actual.shape).toEqual(expected.shape);
      actual.values.forEach((v, i) => expect(v, `element ${i}`).toBeCloseTo(expected.values[i], 6));
      await tf.setBackend('wasm');
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it("matches the gradient of tf.avgPool's global pooling taken on cpu", async () => {
    const shape: [number, number, number, number] = [2, 4, 4, 3];
    const x = randomHost(shape, 'pool/grad/x').values;
    const w = randomHost([2, 1, 1, 3], 'pool/grad/w').values;
    const gradOn = async (backend: 'wasm' | 'cpu') => {
      await tf.setBackend(backend);
      const weights = tf.tensor(w, [2, 1, 1, 3]);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(t as tf.Tensor4D, 4, 4, 'valid'), weights)));
      const dx = g(tf.tensor(x, shape));
      const values = Array.from(dx.dataSync());
      tf.dispose([weights, dx]);
      return values;
    };
    const expected = await gradOn('cpu');
    const actual = await gradOn('wasm');
    actual.forEach((v, i) => expect(v, `element ${i}`).toBeCloseTo(expected[i], 6));
  });
});
