// inferenceConv2d on the one-thread wasm backend (our SIMD loop; XNNPACK's kernels for what it does not take)
// against the same sums made of plain tfjs ops on the cpu backend, and the kernel's memory: nothing left behind.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { inferenceConv2d, type InferenceConvArgs } from '../../src/tf-kernels/inference-conv.js';
import { expectClose, loadBothBackends, onBackend, randomHost, toTensor } from '../support/backends.js';

interface Case {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: [number, number];
  pad: 'same' | 'valid';
  bias?: boolean;
  residual?: boolean;
  affine?: boolean;
  keepRaw?: boolean;
  relu?: boolean;
}

const CASES: Case[] = [
  {
    name: '3x3 same, bias and ReLU',
    x: [2, 7, 6, 3],
    filter: [3, 3, 3, 16],
    strides: [1, 1],
    pad: 'same',
    bias: true,
    relu: true,
  },
  { name: '1x1 stride 2, no bias', x: [3, 8, 8, 8], filter: [1, 1, 8, 12], strides: [2, 2], pad: 'same' },
  {
    name: '1x1 with residual, batch norm after it and raw sums kept, ReLU',
    ...{ x: [2, 5, 5, 8], filter: [1, 1, 8, 32], strides: [1, 1], pad: 'same' },
    ...{ bias: true, residual: true, affine: true, keepRaw: true, relu: true },
  },
  {
    name: '3x3 valid stride 2 with residual and batch norm',
    ...{ x: [2, 9, 7, 4], filter: [3, 3, 4, 8], strides: [2, 2], pad: 'valid', residual: true, affine: true },
  },
  {
    name: "6 output channels (not whole vectors: XNNPACK's kernels) with everything",
    ...{ x: [2, 6, 6, 5], filter: [3, 3, 5, 6], strides: [1, 1], pad: 'same' },
    ...{ bias: true, residual: true, affine: true, keepRaw: true, relu: true },
  },
];

/** The case's tensors, the same values on whichever backend is active. */
function inputs(c: Case, seed: string) {
  const outHeight =
    c.pad === 'same' ? Math.ceil(c.x[1] / c.strides[0]) : Math.floor((c.x[1] - c.filter[0]) / c.strides[0]) + 1;
  const outWidth =
    c.pad === 'same' ? Math.ceil(c.x[2] / c.strides[1]) : Math.floor((c.x[2] - c.filter[1]) / c.strides[1]) + 1;
  const channels = c.filter[3];
  const host = (shape: number[], name: string) => randomHost(shape, `${seed} ${name}`);
  return {
    x: host(c.x, 'x'),
    filter: host(c.filter, 'filter'),
    bias: c.bias ? host([channels], 'bias') : undefined,
    residual: c.residual ? host([c.x[0], outHeight, outWidth, channels], 'residual') : undefined,
    scale: c.affine ? host([channels], 'scale') : undefined,
    shift: c.affine ? host([channels], 'shift') : undefined,
  };
}

/** What inferenceConv2d computes, from tfjs' plain ops. */
function reference(c: Case, values: ReturnType<typeof inputs>): tf.Tensor[] {
  const { x, filter, bias, residual, scale, shift } = values;
  let raw = tf.conv2d(toTensor(x) as tf.Tensor4D, toTensor(filter) as tf.Tensor4D, c.strides, c.pad);
  if (bias) raw = tf.add(raw, toTensor(bias));
  if (residual) raw = tf.add(raw, toTensor(residual));
  let y = scale && shift ? tf.add(tf.mul(raw, toTensor(scale)), toTensor(shift)) : raw;
  if (c.relu) y = tf.relu(y);
  return c.keepRaw ? [raw, y] : [y];
}

function underTest(c: Case, values: ReturnType<typeof inputs>): tf.Tensor[] {
  const { x, filter, bias, residual, scale, shift } = values;
  const args: InferenceConvArgs = {
    x: toTensor(x) as tf.Tensor4D,
    filter: toTensor(filter) as tf.Tensor4D,
    bias: bias && (toTensor(bias) as tf.Tensor1D),
    residual: residual && (toTensor(residual) as tf.Tensor4D),
    affine: scale && shift && { scale: toTensor(scale) as tf.Tensor1D, shift: toTensor(shift) as tf.Tensor1D },
    strides: c.strides,
    pad: c.pad,
    activation: c.relu ? 'relu' : 'linear',
  };
  return c.keepRaw ? inferenceConv2d(args, true) : [inferenceConv2d(args)];
}

beforeAll(async () => {
  // Our SIMD loop runs on the one-thread build only (XNNPACK's kernels share the work among threads otherwise).
  process.env.MALARIA_WASM_THREADS = '1';
  await loadBothBackends();
  const backend = tf.findBackend('wasm') as unknown as { wasm: { tfjs: { getThreadsCount(): number } } };
  expect(backend.wasm.tfjs.getThreadsCount()).toBe(1);
});

describe('inferenceConv2d', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const values = inputs(c, c.name);
      const expected = await onBackend('cpu', () => reference(c, values));
      const actual = await onBackend('wasm', () => underTest(c, values));
      expect(actual.length).toBe(expected.length);
      actual.forEach((tensor, i) => expectClose(tensor, expected[i], 1e-5, `${c.name}, output ${i}`));
    });
  }

  it('leaves no tensor and no wasm memory behind', async () => {
    await tf.setBackend('wasm');
    const backend = tf.engine().backend;
    const values = inputs(CASES[2], 'memory');
    const made = tf.tidy(() => underTest(CASES[2], values).map((t) => t.clone()));
    tf.dispose(made);
    const tensors = tf.memory().numTensors;
    const data = backend.numDataIds();
    for (const c of CASES) {
      const outputs = tf.tidy(() => {
        const v = inputs(c, 'memory');
        return underTest(c, v);
      });
      tf.dispose(outputs);
    }
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(data);
  });
});
