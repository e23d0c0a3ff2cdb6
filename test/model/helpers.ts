// Test helpers for the model tests: an in-memory BatchSource, a synthetic two-class image set, tiny models.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import seedrandom from 'seedrandom';
import { tf } from '../../src/tf.js';
import type { Batch, BatchSource, LabelledFile } from '../../src/data/types.js';
import { buildResNet, resolveArchitecture, type ResNetArchitecture, type ResNetOptions } from '../../src/model/resnet.js';
import { trainStep, type TrainSettings } from '../../src/model/train.js';
import type { ModelMetadata } from '../../src/model/io.js';

export const IMAGE_SIZE = 32;
export const CHANNELS = 3;
export const CLASS_NAMES = ['Parasitized', 'Uninfected'] as const;

export interface MemorySourceOptions {
  /** Shuffle the order each epoch (seeded by seed and epoch), as a training source does. */
  shuffleSeed?: number;
  /** Lets a test tamper with one batch (for example put NaN in it). */
  transform?: (batch: Batch, epoch: number, index: number) => Batch;
}

/** A BatchSource over arrays already in memory: x holds n images of size*size*3 floats. */
export class MemorySource implements BatchSource {
  readonly files: readonly LabelledFile[];
  readonly batchesPerEpoch: number;
  readonly classNames: readonly string[] = CLASS_NAMES;
  /** Epochs whose batches were requested, in order. */
  readonly epochsRequested: number[] = [];

  constructor(
    private readonly x: Float32Array,
    private readonly labels: Int32Array,
    readonly imageSize: number,
    readonly batchSize: number,
    private readonly options: MemorySourceOptions = {},
  ) {
    this.files = Array.from(labels, (label, i) => ({ path: `memory/${i}.png`, label }));
    this.batchesPerEpoch = Math.ceil(labels.length / batchSize);
  }

  async *batches(epoch: number): AsyncIterable<Batch> {
    this.epochsRequested.push(epoch);
    const n = this.labels.length;
    const order = Array.from({ length: n }, (_, i) => i);
    if (this.options.shuffleSeed !== undefined) {
      const random = seedrandom(`${this.options.shuffleSeed}:${epoch}`);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    const pixels = this.imageSize * this.imageSize * CHANNELS;
    for (let index = 0, start = 0; start < n; index++, start += this.batchSize) {
      const ids = order.slice(start, start + this.batchSize);
      const x = new Float32Array(ids.length * pixels);
      ids.forEach((id, k) => x.set(this.x.subarray(id * pixels, (id + 1) * pixels), k * pixels));
      const batch: Batch = { x, labels: Int32Array.from(ids, (id) => this.labels[id]), size: ids.length };
      yield this.options.transform ? this.options.transform(batch, epoch, index) : batch;
    }
  }
}

/**
 * An easy two-class image set: class 0 images are dark (mean 0.3), class 1 bright (mean 0.7), each pixel with
 * uniform noise of +-0.25, so the classes overlap pixel by pixel but not on average. Labels alternate.
 */
export function syntheticImages(n: number, seed: number, imageSize = IMAGE_SIZE): { x: Float32Array; labels: Int32Array } {
  const random = seedrandom(String(seed));
  const pixels = imageSize * imageSize * CHANNELS;
  const x = new Float32Array(n * pixels);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    const mean = labels[i] === 0 ? 0.3 : 0.7;
    for (let p = 0; p < pixels; p++) x[i * pixels + p] = mean + (random() - 0.5) * 0.5;
  }
  return { x, labels };
}

export function syntheticSource(n: number, seed: number, batchSize: number, options: MemorySourceOptions = {}): MemorySource {
  const { x, labels } = syntheticImages(n, seed);
  return new MemorySource(x, labels, IMAGE_SIZE, batchSize, options);
}

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

export const TINY_ARCHITECTURE: ResNetArchitecture = resolveArchitecture(TINY_RESNET);

export function tinySettings(overrides: Partial<TrainSettings> = {}): TrainSettings {
  return { epochs: 3, initialLr: 0.05, power: 1, momentum: 0.9, seed: 7, architecture: TINY_ARCHITECTURE, ...overrides };
}

/** A small conv net with L2 kernels and no batch norm: its gradients do not depend on how a batch is split. */
export function noBatchNormModel(seed = 3, l2 = 5e-4): tf.LayersModel {
  const input = tf.input({ shape: [IMAGE_SIZE, IMAGE_SIZE, CHANNELS] });
  let x = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }), kernelRegularizer: tf.regularizers.l2({ l2 }) })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.averagePooling2d({ poolSize: 4 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  const output = tf.layers
    .dense({ units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }), kernelRegularizer: tf.regularizers.l2({ l2 }) })
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

export async function withTempDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'malaria-model-'));
  try {
    return await run(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** metadata.json for a tinyResNet model; `created` is fixed so saved folders compare byte for byte. */
export function tinyMetadata(overrides: Partial<ModelMetadata> = {}): ModelMetadata {
  return {
    classNames: [...CLASS_NAMES],
    imageSize: IMAGE_SIZE,
    channels: 3,
    scaling: 'x/255',
    resize: 'nearest',
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
