// A tiny tutorial ResNet's training step (loss and every gradient) computed the same way on any backend, so that
// wasm and webgpu can each be compared with the cpu backend.
import { expect } from 'vitest';
import seedrandom from 'seedrandom';
import { tf } from '../../src/tf.js';
import { buildResNet } from '../../src/model/resnet.js';
import { expectClose, onBackend, randomHost, toTensor, type HostTensor } from './backends.js';

const SIZE = 16;
const BATCH = 3;
/** 16 convolution kernels and the dense one: 17 L2 penalties, more than one webgpu program may bind (8 or 16). */
export const STEP_RESNET = { inputSize: SIZE, classes: 2, stages: [2, 1, 1], filters: [4, 8, 12, 16], l2: 1e-3 };

/** Builds the model on the current backend with the given weights. */
function modelWithWeights(weights: HostTensor[]): tf.LayersModel {
  const model = buildResNet(STEP_RESNET);
  const tensors = weights.map(toTensor);
  model.setWeights(tensors);
  tf.dispose(tensors);
  return model;
}

/** Loss and gradients (in trainable-weight order) of cross-entropy plus the L2 penalty, batch norm in training mode. */
function trainingGradients(model: tf.LayersModel, images: HostTensor, labels: number[]): tf.Tensor[] {
  const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), STEP_RESNET.classes);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => {
    const probabilities = model.apply(toTensor(images), { training: true }) as tf.Tensor;
    const crossEntropy = tf.mean(tf.metrics.categoricalCrossentropy(oneHot, probabilities));
    return tf.add(crossEntropy, tf.addN(model.calculateLosses())) as tf.Scalar;
  }, variables);
  return [value, ...variables.map((v) => grads[v.name])];
}

/**
 * One training step of the tiny ResNet on `backend` and on cpu from the same weights and images: the loss within
 * `lossTolerance` and every gradient within `gradientTolerance` (relative to its largest magnitude), and no
 * tensor left behind on `backend`.
 */
export async function expectStepMatchesCpu(
  backend: 'wasm' | 'webgpu',
  lossTolerance: number,
  gradientTolerance: number,
): Promise<void> {
  await tf.setBackend('cpu');
  // The initialisers draw from Math.random: seeded, every run compares the same weights. Over 12 seeded draws the
  // worst gradient error on webgpu was 1e-6 to 2e-5 of its largest value, but one unseeded draw gave 7e-4 (beyond
  // the tolerance), likely a draw that puts an activation where the two backends round to either side of a kink.
  const restoreRandom = Math.random;
  seedrandom('resnet/weights', { global: true });
  const reference = buildResNet(STEP_RESNET);
  Math.random = restoreRandom;
  const weights = reference.getWeights().map((w) => ({ shape: w.shape.slice(), values: w.dataSync() as Float32Array }));
  const images = randomHost([BATCH, SIZE, SIZE, 3], 'resnet/images');
  const labels = [0, 1, 1];
  const expected = await onBackend('cpu', () => trainingGradients(reference, images, labels));
  reference.dispose();

  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const model = modelWithWeights(weights);
  const afterBuild = tf.memory().numTensors;
  const actual = await onBackend(backend, () => trainingGradients(model, images, labels));
  expect(tf.memory().numTensors).toBe(afterBuild);
  model.dispose();
  expect(tf.memory().numTensors).toBe(before);

  expect(actual.length).toBe(expected.length);
  // Every convolution kernel gets a gradient; conv kernels are the rank-4 weights.
  expect(expected.filter((g) => g.shape.length === 4).length).toBe(1 + (4 + 3) + 4 + 4);
  expectClose(actual[0], expected[0], lossTolerance, 'loss');
  for (let i = 1; i < expected.length; i++) expectClose(actual[i], expected[i], gradientTolerance, `gradient ${i}`);
}
