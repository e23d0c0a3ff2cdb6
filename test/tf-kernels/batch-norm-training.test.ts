// Training-mode batch norm as one wasm kernel (three SIMD passes) against tf.moments + tf.batchNorm on the cpu
// backend: its outputs, and its registered gradient through tf.grads.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { BATCH_NORM_TRAINING, canRunBatchNormTraining } from '../../src/tf-kernels/batch-norm-training.js';
import {
  expectClose,
  type HostTensor,
  loadBothBackends,
  onBackend,
  randomHost,
  toTensor,
} from '../support/backends.js';

const EPSILON = 1e-3;

/** x away from zero mean and unit variance (so the statistics matter), offset, scale and a weighting of y. */
function inputs(shape: number[]): Record<'x' | 'offset' | 'scale' | 'r', HostTensor> {
  const channels = shape[shape.length - 1];
  const x = randomHost(shape, `bn-kernel/${shape}/x`);
  x.values.forEach((v, i) => (x.values[i] = 3 * v + 2 + (i % channels) * 0.25));
  return {
    x,
    offset: randomHost([channels], `bn-kernel/${shape}/offset`),
    scale: randomHost([channels], `bn-kernel/${shape}/scale`),
    r: randomHost(shape, `bn-kernel/${shape}/r`),
  };
}

const axesOf = (x: tf.Tensor) => x.shape.map((_, i) => i).slice(0, -1);

// The laptop ResNet's sizes (48x48x16 in batches, 12x12x128), a pixel count no multiple of the 64-pixel block,
// and rank 2.
const SHAPES = [
  [8, 48, 48, 16],
  [4, 12, 12, 128],
  [3, 7, 5, 32],
  [10, 4],
];

describe('WasmBatchNormTraining', () => {
  beforeAll(loadBothBackends);

  for (const shape of SHAPES) {
    it(`gives tf.moments and tf.batchNorm's results on cpu for ${JSON.stringify(shape)}`, async () => {
      const { x, offset, scale } = inputs(shape);
      const expected = await onBackend('cpu', () => {
        const xt = toTensor(x);
        const { mean, variance } = tf.moments(xt, axesOf(xt));
        return [tf.batchNorm(xt, mean, variance, toTensor(offset), toTensor(scale), EPSILON), mean, variance];
      });
      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const probe = tf.zeros(shape);
      expect(canRunBatchNormTraining(probe)).toBe(true);
      probe.dispose();
      const actual = await onBackend(
        'wasm',
        () =>
          tf
            .engine()
            .runKernel(
              BATCH_NORM_TRAINING,
              { x: toTensor(x), scale: toTensor(scale), offset: toTensor(offset) },
              { varianceEpsilon: EPSILON },
            ) as tf.Tensor[],
      );
      ['y', 'mean', 'variance'].forEach((name, i) => expectClose(actual[i], expected[i], 2e-5, name));
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it("has tfjs' gradient of tf.moments + tf.batchNorm for x, scale and offset (tf.grads)", async () => {
    const shape = [4, 10, 10, 16];
    const { x, offset, scale, r } = inputs(shape);
    const expected = await onBackend('cpu', () =>
      tf.grads((xt: tf.Tensor, st: tf.Tensor, ot: tf.Tensor) => {
        const { mean, variance } = tf.moments(xt, axesOf(xt));
        return tf.sum(tf.mul(tf.batchNorm(xt, mean, variance, ot, st, EPSILON), toTensor(r)));
      })([x, scale, offset].map(toTensor)),
    );
    const actual = await onBackend('wasm', () =>
      tf.grads((xt: tf.Tensor, st: tf.Tensor, ot: tf.Tensor) => {
        const [y] = tf
          .engine()
          .runKernel(
            BATCH_NORM_TRAINING,
            { x: xt, scale: st, offset: ot },
            { varianceEpsilon: EPSILON },
          ) as tf.Tensor[];
        return tf.sum(tf.mul(y, toTensor(r)));
      })([x, scale, offset].map(toTensor)),
    );
    ['dx', 'dscale', 'doffset'].forEach((name, i) => expectClose(actual[i], expected[i], 1e-4, name));
  });

  it('is not offered where its passes do not fit: channels not a multiple of 4, other dtypes, the cpu backend', async () => {
    await tf.setBackend('wasm');
    const cases = [tf.zeros([2, 4, 4, 3]), tf.zeros([2, 4, 4, 8], 'int32'), tf.zeros([2, 0, 4, 8])];
    expect(cases.map(canRunBatchNormTraining)).toEqual([false, false, false]);
    tf.dispose(cases);
    await tf.setBackend('cpu');
    const onCpu = tf.zeros([2, 4, 4, 8]);
    expect(canRunBatchNormTraining(onCpu)).toBe(false);
    onCpu.dispose();
  });
});
