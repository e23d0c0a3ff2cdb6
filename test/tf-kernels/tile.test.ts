// The block-copy Tile kernel on wasm against the cpu backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { loadBothBackends, randomHost } from '../support/backends.js';

const CASES: { shape: number[]; reps: number[] }[] = [
  { shape: [1, 1, 1, 5], reps: [2, 3, 4, 1] }, // batch norm's gradient: a channel vector over the activation
  { shape: [2, 3], reps: [3, 2] },
  { shape: [3, 1, 2], reps: [1, 4, 1] },
  { shape: [2, 2, 3], reps: [2, 1, 3] },
  { shape: [7], reps: [5] },
  { shape: [2, 3, 1, 2, 2], reps: [1, 2, 3, 1, 2] },
  { shape: [2, 3], reps: [1, 1] },
  { shape: [2, 3], reps: [0, 2] },
];

async function tileOn(
  backend: 'wasm' | 'cpu',
  values: number[],
  shape: number[],
  reps: number[],
  dtype: 'float32' | 'int32' | 'bool',
) {
  await tf.setBackend(backend);
  const x = tf.tensor(values, shape, dtype);
  const y = tf.tile(x, reps);
  const result = { shape: y.shape.slice(), values: Array.from(y.dataSync()) };
  tf.dispose([x, y]);
  return result;
}

describe('wasm Tile', () => {
  beforeAll(loadBothBackends);

  for (const { shape, reps } of CASES) {
    it(`matches cpu for ${JSON.stringify(shape)} x ${JSON.stringify(reps)}`, async () => {
      const host = randomHost(shape, `tile/${shape}/${reps}`);
      const floats = Array.from(host.values);
      const ints = floats.map((v) => Math.round(v * 1000));
      const bools = floats.map((v) => (v > 0 ? 1 : 0));
      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      for (const [values, dtype] of [
        [floats, 'float32'],
        [ints, 'int32'],
        [bools, 'bool'],
      ] as const) {
        const expected = await tileOn('cpu', [...values], shape, reps, dtype);
        const actual = await tileOn('wasm', [...values], shape, reps, dtype);
        expect(actual, dtype).toEqual(expected);
      }
      await tf.setBackend('wasm');
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
