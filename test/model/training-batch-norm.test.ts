// withTrainingBatchNorm: a model's batch norms in training through the one wasm kernel give tfjs-layers' outputs
// and moving averages, and leave the layers as they were.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { withTrainingBatchNorm } from '../../src/model/training-batch-norm.js';
import { BATCH_NORM_TRAINING } from '../../src/tf-kernels/batch-norm-training.js';
import { expectClose, loadBothBackends, randomHost, toTensor } from '../support/backends.js';

/** conv (8 channels) -> batch norm -> relu -> conv (3 channels) -> batch norm (3: not the kernel's) */
function smallModel(): tf.LayersModel {
  const input = tf.input({ shape: [6, 6, 3] });
  let x = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: 'glorotUniform' })
    .apply(input);
  x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x);
  x = tf.layers.activation({ activation: 'relu' }).apply(x);
  x = tf.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(x);
  x = tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x });
}

const batchNorms = (model: tf.LayersModel) => model.layers.filter((l) => l.getClassName() === 'BatchNormalization');

describe('withTrainingBatchNorm', () => {
  beforeAll(async () => {
    await loadBothBackends();
    await tf.setBackend('wasm');
  });

  it("gives tfjs-layers' output and moving averages in training, through the kernel where it fits", async () => {
    const model = smallModel();
    const images = toTensor(randomHost([4, 6, 6, 3], 'bn-layer/images'));
    const start = model.getWeights().map((w) => w.clone());
    const run = async (patched: boolean) => {
      model.setWeights(start);
      let y: tf.Tensor | undefined;
      const profile = await tf.profile(() => {
        const apply = () => model.apply(images, { training: true }) as tf.Tensor;
        y = patched ? withTrainingBatchNorm(model.layers, apply) : apply();
      });
      const out = { shape: y!.shape.slice(), values: (await y!.data()) as Float32Array };
      y!.dispose();
      const weights = await Promise.all(
        model.getWeights().map(async (w) => ({ shape: w.shape.slice(), values: (await w.data()) as Float32Array })),
      );
      return { out, weights, kernels: profile.kernels.filter((k) => k.name === BATCH_NORM_TRAINING).length };
    };
    const own = await run(false);
    const before = tf.memory().numTensors;
    const fused = await run(true);
    expect(own.kernels).toBe(0);
    // The 8-channel batch norm ran the kernel; the 3-channel one its own layer code.
    expect(fused.kernels).toBe(1);
    expectClose(fused.out, own.out, 2e-5, 'output');
    // The moving means and variances, as tfjs-layers updated them (the other weights do not change).
    const names = model.weights.map((w) => w.name);
    const moving = names.flatMap((name, i) => (/moving_(mean|variance)/.test(name) ? [i] : []));
    expect(moving).toHaveLength(4);
    for (const i of moving) expectClose(fused.weights[i], own.weights[i], 2e-5, names[i]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([images, start]);
  });

  it('runs inference, and any call after it, with the layers’ own code', async () => {
    const model = smallModel();
    const images = tf.zeros([2, 6, 6, 3]);
    const inference = await tf.profile(() =>
      tf.dispose(withTrainingBatchNorm(model.layers, () => model.apply(images, { training: false }) as tf.Tensor)),
    );
    expect(inference.kernels.some((k) => k.name === BATCH_NORM_TRAINING)).toBe(false);
    for (const layer of batchNorms(model)) expect(Object.hasOwn(layer, 'call')).toBe(false);
    const after = await tf.profile(() => tf.dispose(model.apply(images, { training: true }) as tf.Tensor));
    expect(after.kernels.some((k) => k.name === BATCH_NORM_TRAINING)).toBe(false);
    images.dispose();
  });
});
