// Models for tests: a tiny ResNet of the tutorial's shape with its metadata and recipe, a net without batch
// norm, a model whose answers are known in advance, and ways to compare weights and predictions.
import { tf } from '../../src/tf.js';
import { scaleToUnit } from '../../src/input/augment.js';
import { decodeCell } from '../../src/input/decode.js';
import type { ResizeMethod } from '../../src/input/resize.js';
import type { StainMethod, StainReference } from '../../src/input/stain.js';
import { saveModel, type ModelMetadata } from '../../src/model/io.js';
import {
  buildResNet,
  resolveArchitecture,
  type ResNetArchitecture,
  type ResNetOptions,
} from '../../src/model/resnet.js';
import { trainStep } from '../../src/model/train.js';
import { PRESETS } from '../../src/model/presets.js';
import { type TrainRecipe } from '../../src/model/recipe.js';
import { CLASS_NAMES } from './sample.js';
import { CHANNELS, IMAGE_SIZE, syntheticImages } from './sources.js';
import { preprocessingOf } from '../../src/input/preprocessing.js';

export { CHANNELS, CLASS_NAMES, IMAGE_SIZE };

/** A ResNet of the tutorial's shape, shrunk so a 32x32 epoch takes a fraction of a second on the cpu backend. */
export const TINY_RESNET: ResNetOptions = {
  inputSize: IMAGE_SIZE,
  classes: 2,
  stages: [1, 1, 1],
  filters: [4, 4, 8, 8],
};

export function tinyResNet(seed = 1): tf.LayersModel {
  return buildResNet({ ...TINY_RESNET, seed });
}

/** The tiny ResNet as CLI flags (train, backends): 16x16 input, one module per stage, filters 4,4,8,8. */
export const TINY_MODEL_FLAGS = ['--image-size', '16', '--stages', '1,1,1', '--filters', '4,4,8,8'];

export const TINY_ARCHITECTURE: ResNetArchitecture = resolveArchitecture(TINY_RESNET);

/** The tutorial's recipe for tinyResNet: 3 epochs at 0.05 on 32x32 images, seed 7. */
export function tinyRecipe(overrides: Partial<TrainRecipe> = {}): TrainRecipe {
  return {
    ...PRESETS.tutorial,
    epochs: 3,
    batchSize: 8,
    lr: 0.05,
    imageSize: IMAGE_SIZE,
    stages: [...TINY_ARCHITECTURE.stages],
    filters: [...TINY_ARCHITECTURE.filters],
    l2: TINY_ARCHITECTURE.l2,
    momentum: 0.9,
    seed: 7,
    preset: 'tutorial',
    ...overrides,
  };
}

/** A small conv net with L2 kernels and no batch norm: its gradients do not depend on how a batch is split. */
export function noBatchNormModel(seed = 3, l2 = 5e-4): tf.LayersModel {
  const input = tf.input({ shape: [IMAGE_SIZE, IMAGE_SIZE, CHANNELS] });
  let x = tf.layers
    .conv2d({
      filters: 4,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
      kernelRegularizer: tf.regularizers.l2({ l2 }),
    })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.averagePooling2d({ poolSize: 4 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  const output = tf.layers
    .dense({
      units: 2,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      kernelRegularizer: tf.regularizers.l2({ l2 }),
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output });
}

/** Current values of all weights (trainable and not), copied out of the tensors. */
export function weightValues(model: tf.LayersModel): Float32Array[] {
  return model.weights.map((w) => w.read().dataSync() as Float32Array);
}

export function maxAbsDifference(a: Float32Array[], b: Float32Array[]): number {
  if (a.length !== b.length) throw new Error(`${a.length} weights vs ${b.length}`);
  let max = 0;
  a.forEach((values, i) => {
    if (values.length !== b[i].length) throw new Error(`weight ${i}: ${values.length} vs ${b[i].length} values`);
    for (let k = 0; k < values.length; k++) max = Math.max(max, Math.abs(values[k] - b[i][k]));
  });
  return max;
}

/** metadata.json for a tinyResNet model; `created` is fixed so saved folders compare byte for byte. */
export function tinyMetadata(overrides: Partial<ModelMetadata> = {}): ModelMetadata {
  return {
    classNames: [...CLASS_NAMES],
    positiveClass: 'Parasitized',
    imageSize: IMAGE_SIZE,
    channels: 3,
    scaling: 'x/255',
    resize: 'nearest',
    stain: 'keep',
    architecture: TINY_ARCHITECTURE,
    backend: 'cpu',
    created: '2024-01-02T03:04:05.000Z',
    ...overrides,
  };
}

/** A tinyResNet whose weights and batch-norm statistics moved away from their initial values, with its optimizer. */
export async function trainedModel(seed: number): Promise<{ model: tf.LayersModel; optimizer: tf.MomentumOptimizer }> {
  const model = tinyResNet(seed);
  const optimizer = tf.train.momentum(0.05, 0.9);
  const { x, labels } = syntheticImages(8, seed);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  await trainStep(model, optimizer, variables, x, labels, 8, 2);
  return { model, optimizer };
}

/**
 * Saves a tiny untrained ResNet (seed 1) into `dir` (outputs spread over `files` when given); returns the model for
 * Node inference. `extra.classNames` with more than 2 names builds a model with that many outputs.
 */
export async function writeTinyModel(
  dir: string,
  files: readonly string[] = [],
  extra: Partial<ModelMetadata> = {},
): Promise<tf.LayersModel> {
  const model = buildResNet({ ...TINY_RESNET, classes: extra.classNames?.length ?? TINY_RESNET.classes, seed: 1 });
  if (files.length > 1) spreadOutputs(model, await nodeInputs(files, IMAGE_SIZE), files.length);
  await saveModel(dir, model, tinyMetadata(extra));
  return model;
}

/**
 * The network's inputs as training and `evaluate` prepare them: sharp decode, the resize, the stain step (balanced
 * to `stainReference`, default the constant), x/255.
 */
export async function nodeInputs(
  files: readonly string[],
  size: number,
  resize: ResizeMethod = 'nearest',
  stain: StainMethod = 'keep',
  stainReference?: StainReference,
): Promise<Float32Array> {
  const pixels = size * size * 3;
  const x = new Float32Array(files.length * pixels);
  for (let i = 0; i < files.length; i++)
    scaleToUnit(
      await decodeCell(files[i], preprocessingOf({ imageSize: size, resize, stain, stainReference })),
      x,
      i * pixels,
    );
  return x;
}

/** Class probabilities of each file, computed in Node (rows of `classes` numbers). */
export function predictRows(model: tf.LayersModel, x: Float32Array, count: number, size: number): number[][] {
  const values = tf.tidy(() => (model.predict(tf.tensor4d(x, [count, size, size, 3])) as tf.Tensor).dataSync());
  return Array.from({ length: count }, (_, i) => Array.from(values.slice(i * 2, i * 2 + 2)));
}

/**
 * Rescales the untrained classifier so the probabilities on `x` spread around 0.5 (logit difference with mean 0
 * and standard deviation 2). At initialisation they all sit near 0.53, where labels, the review band and the
 * Node/browser comparison would prove little; spread out, a change of preprocessing moves them visibly.
 */
export function spreadOutputs(model: tf.LayersModel, x: Float32Array, count: number): void {
  const size = model.inputs[0].shape[1] as number;
  const dense = model.layers.filter((layer) => layer.getClassName() === 'Dense').at(-1);
  if (!dense) throw new Error('the model has no dense classifier');
  const differences = predictRows(model, x, count, size).map(([p0, p1]) => Math.log(p0 / p1));
  const mean = differences.reduce((a, b) => a + b, 0) / count;
  const std = Math.sqrt(differences.reduce((a, d) => a + (d - mean) ** 2, 0) / count);
  const scale = 2 / std;
  const [kernel, bias] = dense.getWeights();
  const biasValues = bias.dataSync();
  // The logit difference becomes scale * (old - mean); the bias difference carries the shift.
  const newBias = tf.tensor1d([scale * biasValues[0] - (scale * mean) / 2, scale * biasValues[1] + (scale * mean) / 2]);
  const newKernel = kernel.mul(scale);
  dense.setWeights([newKernel, newBias]);
  tf.dispose([newKernel, newBias]);
}

// A model whose answer is known: P(Parasitized) = sigmoid(10 (m - 0.5)), m the mean pixel value in [0, 1].

export const BRIGHTNESS_SIZE = 32;

export const brightnessMetadata: ModelMetadata = {
  classNames: ['Parasitized', 'Uninfected'],
  positiveClass: 'Parasitized',
  imageSize: BRIGHTNESS_SIZE,
  channels: 3,
  scaling: 'x/255',
  resize: 'nearest',
  stain: 'keep',
  backend: 'cpu',
  created: '2024-01-02T03:04:05.000Z',
};

/** Global average pooling gives m per channel; the dense layer's logit difference is 10 (m - 0.5). */
export async function saveBrightnessModel(dir: string): Promise<void> {
  const model = tf.sequential({
    layers: [
      tf.layers.globalAveragePooling2d({ inputShape: [BRIGHTNESS_SIZE, BRIGHTNESS_SIZE, 3] }),
      tf.layers.dense({ units: 2, activation: 'softmax' }),
    ],
  });
  const k = 5 / 3;
  tf.tidy(() =>
    model.layers[1].setWeights([
      tf.tensor2d([
        [k, -k],
        [k, -k],
        [k, -k],
      ]),
      tf.tensor1d([-2.5, 2.5]),
    ]),
  );
  await saveModel(dir, model, brightnessMetadata);
  model.dispose();
}

/** What the brightness model answers for a uniform image of this gray level. */
export const pParasitized = (gray: number): number => 1 / (1 + Math.exp(-10 * (gray / 255 - 0.5)));
