// leanVariableGrads against tf.variableGrads on the cpu backend: the same loss and gradients for a ResNet in
// training mode (batch norm's statistics, ReLU, residual additions, L2), and nothing left behind, even when f throws.
// Its memory is measured on webgpu, where it matters (test/backends/webgpu.test.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { buildResNet } from '../../src/model/resnet.js';
import { leanVariableGrads } from '../../src/model/lean-grads.js';
import { expectClose, randomHost, toTensor, type HostTensor } from '../support/backends.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

const RESNET = { inputSize: 12, classes: 2, stages: [2, 1, 1], filters: [4, 8, 12, 16], l2: 1e-3, seed: 3 };

/** A loss of the ResNet on fixed images, batch norm in training mode, as trainStep computes it. */
function resnetLoss(model: tf.LayersModel, images: HostTensor): () => tf.Scalar {
  return () => {
    const oneHot = tf.oneHot(tf.tensor1d([0, 1, 1, 0, 1], 'int32'), 2);
    const probabilities = model.apply(toTensor(images), { training: true }) as tf.Tensor;
    const crossEntropy = tf.mean(tf.metrics.categoricalCrossentropy(oneHot, probabilities));
    return tf.add(crossEntropy, tf.addN(model.calculateLosses())) as tf.Scalar;
  };
}

async function host(tensor: tf.Tensor): Promise<HostTensor> {
  return { shape: tensor.shape.slice(), values: (await tensor.data()) as Float32Array };
}

describe('leanVariableGrads', () => {
  it('gives the loss and every gradient tf.variableGrads gives for a ResNet with batch norm in training mode', async () => {
    const model = buildResNet(RESNET);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const images = randomHost([5, 12, 12, 3], 'lean/images');
    const statistics = () => model.nonTrainableWeights.map((w) => (w.read().dataSync() as Float32Array).slice());
    const before = statistics();

    const expected = tf.variableGrads(resnetLoss(model, images), variables);
    const afterTfjs = statistics();
    const actual = leanVariableGrads(resnetLoss(model, images), variables);

    expect(await actual.value.data()).toEqual(await expected.value.data());
    expect(Object.keys(actual.grads).sort()).toEqual(Object.keys(expected.grads).sort());
    for (const v of variables) {
      expectClose(await host(actual.grads[v.name]), await host(expected.grads[v.name]), 1e-5, v.name);
    }
    // Each ran the model's forward pass once: moving = 0.9 * moving + 0.1 * batch, with the same batch statistics.
    const afterLean = statistics();
    for (let i = 0; i < before.length; i++) {
      const batchTimesTenth = afterTfjs[i].map((v, j) => v - 0.9 * before[i][j]);
      const once = afterTfjs[i].map((v, j) => 0.9 * v + batchTimesTenth[j]);
      expectClose({ shape: [once.length], values: afterLean[i] }, { shape: [once.length], values: once }, 1e-5);
    }
    tf.dispose([expected.value, actual.value, expected.grads, actual.grads]);
    model.dispose();
  });

  it('leaves only the loss and the gradients, and tfjs gradients work as before afterwards', () => {
    const model = buildResNet(RESNET);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const images = randomHost([5, 12, 12, 3], 'lean/tensors');
    const tensors = tf.memory().numTensors;
    const { value, grads } = leanVariableGrads(resnetLoss(model, images), variables);
    expect(tf.memory().numTensors - tensors).toBe(1 + variables.length);
    tf.dispose([value, grads]);
    expect(tf.memory().numTensors).toBe(tensors);
    // The engine's tape is off and its own recording untouched: tfjs' gradients of a plain function still work.
    const x = tf.scalar(3);
    const dx = tf.grad((t: tf.Tensor) => tf.square(t))(x);
    expect(dx.dataSync()[0]).toBe(6);
    tf.dispose([x, dx]);
    model.dispose();
  });

  it('frees what the forward pass made when f throws, and the next call works', () => {
    const model = buildResNet(RESNET);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const images = randomHost([5, 12, 12, 3], 'lean/throws');
    const tensors = tf.memory().numTensors;
    const loss = resnetLoss(model, images);
    expect(() =>
      leanVariableGrads(() => {
        loss();
        throw new Error('out of memory, say');
      }, variables),
    ).toThrow('out of memory, say');
    expect(tf.memory().numTensors).toBe(tensors);
    const { value, grads } = leanVariableGrads(loss, variables);
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    tf.dispose([value, grads]);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });

  it('gives no gradient for a variable the loss does not read, as tfjs does', () => {
    const used = tf.variable(tf.tensor1d([1, 2, 3]), true, 'lean/used');
    const unused = tf.variable(tf.tensor1d([7]), true, 'lean/unused');
    const f = () => tf.sum(tf.square(used)) as tf.Scalar;
    const expected = tf.variableGrads(f, [used, unused]);
    const actual = leanVariableGrads(f, [used, unused]);
    expect(Object.keys(actual.grads)).toEqual(Object.keys(expected.grads));
    expect(actual.grads['lean/used'].arraySync()).toEqual([2, 4, 6]);
    tf.dispose([expected.value, actual.value, expected.grads, actual.grads, used, unused]);
  });
});
