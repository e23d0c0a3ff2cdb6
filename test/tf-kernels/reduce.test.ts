// Sum and Mean over blocks of leading or middle axes (XNNPACK pooling), and the Mean gradient, on wasm against cpu.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { blockReduction } from '../../src/tf-kernels/reduce.js';
import { expectClose, loadBothBackends, onBackend, randomHost, toTensor } from '../support/backends.js';

const CASES: { shape: number[]; axis: number[]; keepDims: boolean }[] = [
  { shape: [3, 5, 4, 6], axis: [0, 1, 2], keepDims: false }, // batch-norm statistics of NHWC
  { shape: [3, 5, 4, 6], axis: [0, 1, 2], keepDims: true },
  { shape: [2, 5, 4, 3], axis: [1, 2], keepDims: false }, // global average pooling
  { shape: [7, 3], axis: [0], keepDims: true },
  { shape: [2, 3, 4], axis: [2, 1], keepDims: false }, // trailing axes: wasm's own kernel
  { shape: [4, 1, 3], axis: [1], keepDims: false },
  { shape: [2, 3, 4], axis: [0, 2], keepDims: true }, // not contiguous: wasm's own kernel
  { shape: [2, 70, 70, 3], axis: [0, 1, 2], keepDims: false }, // 9800 values per channel: pooled in two levels
  { shape: [4099, 2], axis: [0], keepDims: false }, // a prime count above the window limit: one window
];

describe('wasm Sum and Mean', () => {
  beforeAll(loadBothBackends);

  it('take the fast path exactly for contiguous, non-trailing blocks', () => {
    expect(blockReduction([3, 5, 4, 6], [0, 1, 2])).toEqual([1, 60, 6]);
    expect(blockReduction([2, 5, 4, 3], [2, 1])).toEqual([2, 20, 3]);
    expect(blockReduction([2, 3, 4], [1, 2])).toBeUndefined();
    expect(blockReduction([2, 3, 4], [0, 2])).toBeUndefined();
  });

  for (const { shape, axis, keepDims } of CASES) {
    it(`match cpu for ${JSON.stringify(shape)} over ${JSON.stringify(axis)}${keepDims ? ', keepDims' : ''}`, async () => {
      const x = randomHost(shape, `reduce/${shape}/${axis}`);
      const compute = () => [tf.sum(toTensor(x), axis, keepDims), tf.mean(toTensor(x), axis, keepDims)];
      const expected = await onBackend('cpu', compute);
      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const actual = await onBackend('wasm', compute);
      expect(tf.memory().numTensors).toBe(before);
      // Pooling accumulates in float32, the cpu backend in float64.
      expectClose(actual[0], expected[0], 1e-5, 'sum');
      expectClose(actual[1], expected[1], 1e-5, 'mean');
    });
  }

  it('leave integer sums to wasm and get them right', async () => {
    const compute = () => [
      tf.sum(
        tf.tensor(
          [
            [1, 2],
            [3, 4],
            [5, 6],
          ],
          [3, 2],
          'int32',
        ),
        0,
      ),
    ];
    const [actual] = await onBackend('wasm', compute);
    expect(Array.from(actual.values)).toEqual([9, 12]);
  });
});

describe('wasm Mean gradient', () => {
  beforeAll(loadBothBackends);

  for (const { shape, axis } of [
    { shape: [2, 3, 4, 5], axis: [0, 1, 2] },
    { shape: [3, 4, 2], axis: [1] },
    { shape: [4, 6], axis: [0, 1] },
  ]) {
    it(`matches cpu for ${JSON.stringify(shape)} over ${JSON.stringify(axis)}`, async () => {
      const x = randomHost(shape, `mean-grad/${shape}/x`);
      const keptShape = shape.map((size, i) => (axis.includes(i) ? 1 : size));
      const r = randomHost(keptShape, `mean-grad/${shape}/r`);
      const f = () => [tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, axis, true), toTensor(r))))(toTensor(x))];
      const expected = await onBackend('cpu', f);
      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const actual = await onBackend('wasm', f);
      expect(tf.memory().numTensors).toBe(before);
      expectClose(actual[0], expected[0], 1e-6, 'dx');
    });
  }
});
