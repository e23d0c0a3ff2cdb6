// The wasm filter gradient (our SIMD loop) against the cpu backend's, on every Conv2D shape of the laptop and
// tutorial ResNets, on odd sizes, and without leaving tensors or heap memory behind.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { convolutionShapes } from '../../src/model/resnet.js';
import { PRESETS, type PresetName } from '../../src/model/presets.js';
import {
  expectClose,
  type HostTensor,
  loadBothBackends,
  onBackend,
  randomHost,
  toTensor,
} from '../support/backends.js';

type Shape4 = [number, number, number, number];

interface FilterGradCase {
  x: Shape4;
  filter: Shape4;
  strides: [number, number];
  pad: 'same' | 'valid';
}

const label = (c: FilterGradCase) =>
  `x ${c.x.join('x')}, filter ${c.filter.join('x')}, stride ${c.strides.join(',')} ${c.pad}`;

/**
 * The distinct Conv2D shapes of a preset's ResNet, at `batch` images of `inputSize` (the preset's own unless
 * given: the tutorial's at full size would cost its cpu reference minutes).
 */
function networkCases(preset: PresetName, batch: number, inputSize: number = PRESETS[preset].imageSize) {
  const { stages, filters } = PRESETS[preset];
  return convolutionShapes({ inputSize, classes: 2, stages, filters }, batch).map(
    ({ input, filter, strides, pad }): FilterGradCase => ({ x: input, filter, strides, pad }),
  );
}

function outShape(c: FilterGradCase): number[] {
  return tf.tidy(
    () => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.filter) as tf.Tensor4D, c.strides, c.pad).shape,
  );
}

/** dW from the active backend's Conv2DBackpropFilter kernel. */
function filterGrad(c: FilterGradCase, x: HostTensor, dy: HostTensor): tf.Tensor {
  const attrs = {
    strides: c.strides,
    pad: c.pad,
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
    filterShape: c.filter,
  };
  return tf
    .engine()
    .runKernel(
      'Conv2DBackpropFilter',
      { x: toTensor(x), dy: toTensor(dy) },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor;
}

/** Checks wasm against cpu on random x and dy; the wasm run must leave the tensor count as it was. */
async function expectMatchesCpu(c: FilterGradCase): Promise<void> {
  const x = randomHost(c.x, `${label(c)}/x`);
  const dy = randomHost(outShape(c), `${label(c)}/dy`);
  const [expected] = await onBackend('cpu', () => [filterGrad(c, x, dy)]);
  await tf.setBackend('wasm');
  const before = tf.memory().numTensors;
  const [actual] = await onBackend('wasm', () => [filterGrad(c, x, dy)]);
  expect(tf.memory().numTensors, label(c)).toBe(before);
  expectClose(actual, expected, 1e-4, label(c));
}

describe('wasm Conv2DBackpropFilter', () => {
  beforeAll(loadBothBackends);

  /** Each case in turn, letting the test runner's messages through in between (the cpu reference takes a while). */
  async function expectAllMatchCpu(cases: FilterGradCase[]): Promise<void> {
    // 3x3 stride 1 and 2, 1x1 stride 1 and 2 (the shortcuts), and the stem's 3 input channels.
    expect(cases.length).toBeGreaterThanOrEqual(10);
    for (const c of cases) {
      await expectMatchesCpu(c);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('matches cpu on every convolution of the laptop ResNet (48x48, batch 2)', () =>
    expectAllMatchCpu(networkCases('laptop', 2)));

  // Its channels (3 to 512) and strides at 16x16 input: the laptop's sizes cover the sizes.
  it("matches cpu on every convolution of the tutorial ResNet's channels and strides (16x16, batch 1)", () =>
    expectAllMatchCpu(networkCases('tutorial', 1, 16)));

  // Odd sizes of the networks' operations: padding on both sides, rows and columns of the last tap outside the
  // input, and channel counts that are not multiples of the SIMD tile (4 inputs x 8 outputs).
  const ODD: FilterGradCase[] = [
    // The tutorial's stem at its full size: bands of one row of 64 pixels.
    { x: [1, 64, 64, 3], filter: [3, 3, 3, 64], strides: [1, 1], pad: 'same' },
    { x: [1, 25, 25, 16], filter: [3, 3, 16, 16], strides: [2, 2], pad: 'same' },
    { x: [3, 13, 11, 3], filter: [3, 3, 3, 16], strides: [1, 1], pad: 'same' },
    { x: [2, 25, 23, 32], filter: [1, 1, 32, 64], strides: [2, 2], pad: 'same' },
    { x: [1, 9, 9, 7], filter: [3, 3, 7, 12], strides: [2, 2], pad: 'valid' },
    { x: [2, 5, 6, 5], filter: [3, 3, 5, 6], strides: [1, 1], pad: 'same' },
    { x: [1, 12, 12, 128], filter: [1, 1, 128, 20], strides: [1, 1], pad: 'same' },
  ];
  for (const c of ODD) it(`matches cpu: ${label(c)}`, () => expectMatchesCpu(c));

  it('leaves no wasm memory behind, also when output channels are padded to whole vectors', async () => {
    for (const c of [ODD[1], ODD[5]]) {
      const x = randomHost(c.x, 'leak/x');
      const dy = randomHost(outShape(c), 'leak/dy');
      await onBackend('wasm', () => [filterGrad(c, x, dy)]);
      const backend = tf.backend() as tf.KernelBackend;
      const before = backend.numDataIds();
      await onBackend('wasm', () => [filterGrad(c, x, dy)]);
      expect(backend.numDataIds(), label(c)).toBe(before);
    }
  });
});
