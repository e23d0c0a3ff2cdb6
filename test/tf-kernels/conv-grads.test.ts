// The wasm convolution gradient kernels against the cpu backend's, over strides, filter sizes, paddings and odd sizes.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import {
  expectClose,
  type HostTensor,
  loadBothBackends,
  onBackend,
  randomHost,
  toTensor,
} from '../support/backends.js';

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

interface Case {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: [number, number];
  pad: Pad;
}

const CASES: Case[] = [
  { name: '1x1 stride 1 same, batch 2', x: [2, 5, 7, 3], filter: [1, 1, 3, 4], strides: [1, 1], pad: 'same' },
  {
    name: '1x1 stride 1 valid, fewer output channels',
    x: [2, 4, 3, 6],
    filter: [1, 1, 6, 2],
    strides: [1, 1],
    pad: 'valid',
  },
  { name: '1x1 stride 2 same, odd size', x: [2, 7, 5, 4], filter: [1, 1, 4, 6], strides: [2, 2], pad: 'same' },
  { name: '1x1 stride 2 valid, even size', x: [3, 6, 8, 5], filter: [1, 1, 5, 3], strides: [2, 2], pad: 'valid' },
  { name: '3x3 stride 1 same, batch 1', x: [1, 6, 5, 3], filter: [3, 3, 3, 4], strides: [1, 1], pad: 'same' },
  { name: '3x3 stride 1 valid', x: [2, 7, 6, 2], filter: [3, 3, 2, 5], strides: [1, 1], pad: 'valid' },
  { name: '3x3 stride 2 same, even size', x: [2, 8, 8, 4], filter: [3, 3, 4, 4], strides: [2, 2], pad: 'same' },
  { name: '3x3 stride 2 same, odd size', x: [2, 7, 9, 3], filter: [3, 3, 3, 5], strides: [2, 2], pad: 'same' },
  { name: '3x3 stride 2 valid, odd size', x: [1, 9, 7, 3], filter: [3, 3, 3, 2], strides: [2, 2], pad: 'valid' },
  { name: '2x2 stride 2 same', x: [2, 5, 6, 3], filter: [2, 2, 3, 4], strides: [2, 2], pad: 'same' },
  { name: '5x3 stride 3 same', x: [2, 10, 8, 2], filter: [5, 3, 2, 3], strides: [3, 3], pad: 'same' },
  { name: '3x3 strides 1,2 (unequal)', x: [2, 6, 7, 3], filter: [3, 3, 3, 2], strides: [1, 2], pad: 'same' },
  // Over 4096 output pixels: the filter gradient is summed over chunks of images.
  { name: '3x3 stride 1 same, several chunks', x: [3, 40, 40, 2], filter: [3, 3, 2, 3], strides: [1, 1], pad: 'same' },
  // Stride 1 'same' shifts whole blocks of planes; shifts of 2 (5x5) and a filter wider than the image reach
  // across rows and planes, and must come back as zeros.
  { name: '5x5 stride 1 same, batch 3', x: [3, 6, 7, 4], filter: [5, 5, 4, 3], strides: [1, 1], pad: 'same' },
  {
    name: '7x7 stride 1 same, filter wider than the image',
    x: [2, 3, 4, 2],
    filter: [7, 7, 2, 3],
    strides: [1, 1],
    pad: 'same',
  },
  {
    name: '1x1 stride 1, several chunks, fewer outputs',
    x: [3, 40, 40, 4],
    filter: [1, 1, 4, 2],
    strides: [1, 1],
    pad: 'same',
  },
  { name: '1x1 stride 2, several chunks', x: [3, 80, 80, 2], filter: [1, 1, 2, 3], strides: [2, 2], pad: 'same' },
  {
    name: '3x3 stride 2 explicit padding',
    x: [2, 7, 6, 3],
    filter: [3, 3, 3, 4],
    strides: [2, 2],
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
];

/** dL/dx and dL/dW for L = sum(conv2d(x, W) * r), so that dy = r is random. */
function convGrads(c: Case, x: HostTensor, w: HostTensor, r: HostTensor): tf.Tensor[] {
  const loss = (xt: tf.Tensor, wt: tf.Tensor) =>
    tf.sum(tf.mul(tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.strides, c.pad), toTensor(r)));
  return tf.grads(loss)([toTensor(x), toTensor(w)]);
}

function outShape(c: Case): number[] {
  return tf.tidy(
    () => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.filter) as tf.Tensor4D, c.strides, c.pad).shape,
  );
}

describe('wasm conv2d gradient kernels', () => {
  beforeAll(loadBothBackends);

  for (const c of CASES) {
    it(`match cpu: ${c.name}`, async () => {
      const x = randomHost(c.x, `${c.name}/x`);
      const w = randomHost(c.filter, `${c.name}/w`);
      await tf.setBackend('cpu');
      const r = randomHost(outShape(c), `${c.name}/r`);
      const expected = await onBackend('cpu', () => convGrads(c, x, w, r));
      const before = tf.memory().numTensors;
      const actual = await onBackend('wasm', () => convGrads(c, x, w, r));
      expect(tf.memory().numTensors).toBe(before);
      expectClose(actual[0], expected[0], 1e-4, 'dx');
      expectClose(actual[1], expected[1], 1e-4, 'dW');
    });
  }

  it('leave no wasm memory behind', async () => {
    const c = CASES[6];
    const x = randomHost(c.x, 'leak/x');
    const w = randomHost(c.filter, 'leak/w');
    await tf.setBackend('wasm');
    const r = randomHost(outShape(c), 'leak/r');
    await onBackend('wasm', () => convGrads(c, x, w, r));
    const backend = tf.backend() as tf.KernelBackend;
    const before = backend.numDataIds();
    await onBackend('wasm', () => convGrads(c, x, w, r));
    expect(backend.numDataIds()).toBe(before);
  });
});
