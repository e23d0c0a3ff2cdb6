// The threaded wasm build starts under Node with the threads asked for (whatever the machine's core count), computes
// the same convolution gradients as cpu, and never keeps a process alive after it failed to start.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { expectClose, onBackend, randomHost, toTensor } from '../support/backends.js';

describe('threaded wasm backend', () => {
  beforeAll(async () => {
    // Two threads on any machine: the core count is injected, so this holds on 1 core as on 16.
    await selectBackend('wasm', { env: { MALARIA_WASM_THREADS: '2' }, cores: 2 });
    await selectBackend('cpu');
  });
  afterAll(() => tf.removeBackend('wasm')); // disposes the one threaded backend made, ending its pthread workers

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

  it('ends its workers when it fails after starting them, so the process exits by itself', async () => {
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
      // Without the clean-up the workers keep the child alive until the timeout kills it (an error here).
      execFile(process.execPath, ['test/tf-kernels/threaded-failure.mjs'], { timeout: 30_000 }, (error, out) =>
        error ? reject(error) : resolve({ stdout: out }),
      );
    });
    expect(stdout.trim()).toBe('failed: forced failure after the workers started');
  });
});
