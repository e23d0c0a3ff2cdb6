// The wasm batch norm (forward as a depthwise convolution, and its gradient) against the cpu backend's.
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

/** Gradients of sum(batchNorm(x, moments(x), offset, scale) * r) with respect to x, offset and scale. */
function trainingModeGrads(x: HostTensor, offset: HostTensor, scale: HostTensor, r: HostTensor) {
  const f = (xt: tf.Tensor, ot: tf.Tensor, st: tf.Tensor) => {
    const axes = xt.shape.map((_, i) => i).slice(0, -1);
    const { mean, variance } = tf.moments(xt, axes);
    const y = tf.batchNorm(xt, mean, variance, ot, st, 1e-3);
    return tf.sum(tf.mul(y, toTensor(r)));
  };
  return tf.grads(f)([x, offset, scale].map(toTensor));
}

const SHAPES = [
  [2, 3, 4, 5],
  [6, 3],
  [1, 5, 5, 2],
];

describe('wasm FusedBatchNorm', () => {
  beforeAll(loadBothBackends);

  for (const shape of [
    [2, 3, 4, 5],
    [6, 3],
    [2, 7, 4],
  ]) {
    it(`normalises like cpu for ${JSON.stringify(shape)}`, async () => {
      const channels = shape[shape.length - 1];
      const [x, mean, variance, offset, scale] = [shape, [channels], [channels], [channels], [channels]].map((s, i) =>
        randomHost(s, `bn-forward/${shape}/${i}`),
      );
      variance.values.forEach((v, i) => (variance.values[i] = Math.abs(v) + 0.05));
      const f = () => [
        tf.batchNorm(toTensor(x), toTensor(mean), toTensor(variance), toTensor(offset), toTensor(scale), 1e-3),
        tf.batchNorm(toTensor(x), toTensor(mean), toTensor(variance), undefined, undefined, 1e-3),
      ];
      const expected = await onBackend('cpu', f);
      const actual = await onBackend('wasm', f);
      expectClose(actual[0], expected[0], 1e-5, 'with offset and scale');
      expectClose(actual[1], expected[1], 1e-5, 'without');
    });
  }

  // (Without a scale, tfjs-core cannot differentiate batchNorm on any backend: it saves the missing scale.)
  for (const shape of SHAPES) {
    it(`matches cpu for ${JSON.stringify(shape)}`, async () => {
      const channels = shape[shape.length - 1];
      const x = randomHost(shape, `bn/${shape}/x`);
      // Scale the input away from unit variance so that the variance terms matter.
      x.values.forEach((v, i) => (x.values[i] = 3 * v + 0.5));
      const scale = randomHost([channels], `bn/${shape}/scale`);
      const offset = randomHost([channels], `bn/${shape}/offset`);
      const r = randomHost(shape, `bn/${shape}/r`);
      const expected = await onBackend('cpu', () => trainingModeGrads(x, offset, scale, r));
      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const actual = await onBackend('wasm', () => trainingModeGrads(x, offset, scale, r));
      expect(tf.memory().numTensors).toBe(before);
      expectClose(actual[0], expected[0], 1e-4, 'dx');
      expectClose(actual[1], expected[1], 1e-4, 'doffset');
      expectClose(actual[2], expected[2], 1e-4, 'dscale');
    });
  }

  it('gives the per-input gradients of batchNorm with given statistics', async () => {
    const shape = [3, 4, 2, 3];
    const hosts = [shape, [3], [3], [3], [3], shape].map((s, i) => randomHost(s, `bn-direct/${i}`));
    hosts[2].values.forEach((v, i) => (hosts[2].values[i] = Math.abs(v) + 0.1)); // a positive variance
    const f = () =>
      tf.grads((x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, offset: tf.Tensor, scale: tf.Tensor) =>
        tf.sum(tf.mul(tf.batchNorm(x, mean, variance, offset, scale, 1e-3), toTensor(hosts[5]))),
      )(hosts.slice(0, 5).map(toTensor));
    const expected = await onBackend('cpu', f);
    const actual = await onBackend('wasm', f);
    const names = ['dx', 'dmean', 'dvariance', 'doffset', 'dscale'];
    expected.forEach((e, i) => expectClose(actual[i], e, 1e-4, names[i]));
  });
});
