// The opt-in threaded wasm build starts under Node and computes the same convolution gradients as cpu.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend, tf } from '../../src/tf.js';
import { registerThreadedWasmBackend } from '../../src/tf-kernels/threaded-wasm.js';
import { expectClose, onBackend, randomHost, toTensor } from '../support/backends.js';

describe('threaded wasm backend', () => {
  beforeAll(async () => {
    await registerThreadedWasmBackend(2);
    await selectBackend('wasm');
    await selectBackend('cpu');
  });
  afterAll(() => tf.removeBackend('wasm')); // terminates the pthread workers

  it('runs two threads and matches cpu on a conv2d training gradient', async () => {
    await tf.setBackend('wasm');
    const module = (tf.backend() as unknown as { wasm: { tfjs: { getThreadsCount(): number } } }).wasm;
    expect(module.tfjs.getThreadsCount()).toBe(2);

    const x = randomHost([2, 9, 9, 8], 'threads/x');
    const w = randomHost([3, 3, 8, 16], 'threads/w');
    const r = randomHost([2, 5, 5, 16], 'threads/r');
    const grads = () =>
      tf.grads((xt: tf.Tensor, wt: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 2, 'same'), toTensor(r))),
      )([toTensor(x), toTensor(w)]);
    const expected = await onBackend('cpu', grads);
    const actual = await onBackend('wasm', grads);
    expectClose(actual[0], expected[0], 1e-4, 'dx');
    expectClose(actual[1], expected[1], 1e-4, 'dW');
  });
});
