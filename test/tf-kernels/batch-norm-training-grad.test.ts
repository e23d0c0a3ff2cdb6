// Training-mode batch norm's gradient on wasm (leanVariableGrads' rule, in two XNNPACK-based kernels) against
// tfjs' own gradient of tf.moments + tf.batchNorm on the cpu backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { leanVariableGrads } from '../../src/model/lean-grads.js';
import { BATCH_NORM_TRAINING_DX } from '../../src/tf-kernels/batch-norm-training-grad.js';
import { expectClose, type HostTensor, loadBothBackends, randomHost, toTensor } from '../support/backends.js';

/** sum(batchNorm(x, moments(x), offset, scale) * r), the statistics those of x itself (training mode). */
function loss(x: tf.Tensor, offset: tf.Tensor, scale: tf.Tensor, r: HostTensor): tf.Scalar {
  const axes = x.shape.map((_, i) => i).slice(0, -1);
  const { mean, variance } = tf.moments(x, axes);
  return tf.sum(tf.mul(tf.batchNorm(x, mean, variance, offset, scale, 1e-3), toTensor(r)));
}

async function hosts(tensors: tf.Tensor[]): Promise<HostTensor[]> {
  return Promise.all(tensors.map(async (t) => ({ shape: t.shape.slice(), values: (await t.data()) as Float32Array })));
}

// NHWC activations, as the ResNet's (tf.batchNorm reshapes other ranks, which leanVariableGrads leaves to tfjs).
const SHAPES = [
  [2, 3, 4, 5],
  [4, 6, 6, 16],
  [3, 5, 5, 1],
  [2, 3, 3, 128],
];

describe('wasm training-mode batch-norm gradient', () => {
  beforeAll(loadBothBackends);

  for (const shape of SHAPES) {
    it(`matches tfjs' gradient on cpu for ${JSON.stringify(shape)}`, async () => {
      const channels = shape[shape.length - 1];
      const x = randomHost(shape, `bn-train/${shape}/x`);
      // Away from zero mean and unit variance, so that the mean and variance terms matter.
      x.values.forEach((v, i) => (x.values[i] = 3 * v + 2));
      const offset = randomHost([channels], `bn-train/${shape}/offset`);
      const scale = randomHost([channels], `bn-train/${shape}/scale`);
      const r = randomHost(shape, `bn-train/${shape}/r`);

      await tf.setBackend('cpu');
      const reference = tf.grads((xt: tf.Tensor, ot: tf.Tensor, st: tf.Tensor) => loss(xt, ot, st, r))(
        [x, offset, scale].map(toTensor),
      );
      const expected = await hosts(reference);
      tf.dispose(reference);

      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const variables = [x, offset, scale].map((h) => tf.tidy(() => tf.variable(toTensor(h))));
      let grads: tf.NamedTensorMap = {};
      let value: tf.Scalar | undefined;
      const profile = await tf.profile(() => {
        ({ value, grads } = leanVariableGrads(() => loss(variables[0], variables[1], variables[2], r), variables));
      });
      // The fused kernels ran (not tfjs' ops), once per batch norm.
      expect(profile.kernels.filter((k) => k.name === BATCH_NORM_TRAINING_DX)).toHaveLength(1);
      const actual = await hosts(variables.map((v) => grads[v.name]));
      expectClose(actual[0], expected[0], 1e-4, 'dx');
      expectClose(actual[1], expected[1], 1e-4, 'doffset');
      expectClose(actual[2], expected[2], 1e-4, 'dscale');
      tf.dispose([value as tf.Scalar, grads, variables]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
