// Our SIMD ReLU and ReLU gradient on wasm against the cpu backend's.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { RELU_GRAD, reluGradient } from '../../src/tf-kernels/relu-wasm.js';
import { expectClose, loadBothBackends, onBackend, randomHost, toTensor } from '../support/backends.js';

describe('ReLU on wasm', () => {
  beforeAll(loadBothBackends);

  // A laptop activation, and sizes that are not a multiple of 4 values (wasm's own kernel then).
  for (const shape of [
    [4, 12, 12, 32],
    [3, 5, 7],
    [2, 3],
  ]) {
    it(`gives the cpu backend's relu and its gradient for ${JSON.stringify(shape)}`, async () => {
      const x = randomHost(shape, `relu/${shape}/x`);
      x.values[0] = 0;
      const dy = randomHost(shape, `relu/${shape}/dy`);
      const compute = () => {
        const y = tf.relu(toTensor(x));
        return [y, reluGradient(toTensor(dy), y)];
      };
      const expected = await onBackend('cpu', compute);
      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const actual = await onBackend('wasm', compute);
      expectClose(actual[0], expected[0], 0, 'relu');
      expectClose(actual[1], expected[1], 0, 'gradient');
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('runs the gradient as one kernel where it fits, and not for int32 or the cpu backend', async () => {
    await tf.setBackend('wasm');
    const y = tf.relu(tf.linspace(-1, 1, 8));
    const dy = tf.onesLike(y);
    const profile = await tf.profile(() => tf.dispose(reluGradient(dy, y)));
    expect(profile.kernels.map((k) => k.name)).toEqual([RELU_GRAD]);
    const ints = tf.tensor([1, -2, 3, 0], undefined, 'int32');
    const intRelu = tf.relu(ints);
    expect(await intRelu.data()).toEqual(new Int32Array([1, 0, 3, 0]));
    tf.dispose([y, dy, ints, intRelu]);
  });
});
