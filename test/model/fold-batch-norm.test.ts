// The folded inference network against the model it was made from: the same probabilities (to float32 rounding)
// on real cells, with batch-norm statistics far from their initial values, on cpu and on one-thread wasm (where
// our own convolution runs); its tensors freed; and the model itself wherever the fold does not apply.
import { beforeAll, describe, expect, it } from 'vitest';
import seedrandom from 'seedrandom';
import { tf } from '../../src/tf.js';
import { foldBatchNorm, withInferenceNetwork } from '../../src/model/fold-batch-norm.js';
import { batchProbabilities } from '../../src/model/inference.js';
import { loadModel, saveModel } from '../../src/model/io.js';
import { PRESETS } from '../../src/model/presets.js';
import { buildResNet } from '../../src/model/resnet.js';
import { loadBothBackends } from '../support/backends.js';
import { nodeInputs, spreadOutputs, tinyMetadata, tinyResNet, trainedModel } from '../support/models.js';
import { samplePaths } from '../support/sample.js';
import { withTempDir } from '../support/temp.js';

/** The real cells of the bundled sample, `perClass` of each class, as the network takes them at `size`. */
async function cells(perClass: number, size: number): Promise<{ x: Float32Array; count: number }> {
  const files = [...(await samplePaths('Parasitized', perClass)), ...(await samplePaths('Uninfected', perClass))];
  return { x: await nodeInputs(files, size), count: files.length };
}

/**
 * Seeded batch-norm statistics and factors far from the initial ones (mean 0, variance 1, gamma 1, beta 0), so that
 * a fold that dropped or misplaced any of them would show.
 */
function randomiseBatchNorms(model: tf.LayersModel, seed: string): void {
  const random = seedrandom(seed);
  const uniform = (shape: number[], low: number, high: number) =>
    tf.tensor(
      Float32Array.from({ length: shape[0] }, () => low + (high - low) * random()),
      shape,
    );
  for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const shape = layer.getWeights()[0].shape;
    // Keras' order: gamma, beta, moving mean, moving variance.
    const values = [
      uniform(shape, 0.5, 1.5),
      uniform(shape, -0.5, 0.5),
      uniform(shape, -0.5, 0.5),
      uniform(shape, 0.3, 2),
    ];
    layer.setWeights(values);
    tf.dispose(values);
  }
}

const predictValues = (model: tf.LayersModel, x: Float32Array, count: number): Float32Array => {
  const [, height, width, channels] = model.inputs[0].shape as number[];
  return tf.tidy(() =>
    (model.predict(tf.tensor4d(x, [count, height, width, channels])) as tf.Tensor).dataSync(),
  ) as Float32Array;
};

const maxDifference = (a: Float32Array, b: Float32Array): number => {
  expect(a.length).toBe(b.length);
  return Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
};

/** The spread of P(class 0) over the images: the comparison means something only if the model tells them apart. */
const spread = (probabilities: Float32Array): number => {
  const p0 = Array.from(probabilities).filter((_, i) => i % 2 === 0);
  return Math.max(...p0) - Math.min(...p0);
};

/** Folded and unfolded probabilities of the same images: the largest difference. */
async function foldedDifference(model: tf.LayersModel, x: Float32Array, count: number, tta = false): Promise<number> {
  const folded = await foldBatchNorm(model);
  expect(folded, 'the model was not folded').toBeDefined();
  try {
    const expected = await batchProbabilities(tf, model, x, count, { tta });
    expect(spread(expected)).toBeGreaterThan(0.2);
    return maxDifference(await batchProbabilities(tf, folded!, x, count, { tta }), expected);
  } finally {
    folded!.dispose();
  }
}

beforeAll(async () => {
  // One thread, so that wasm runs our own convolution (src/tf-kernels/inference-conv.ts) and not XNNPACK's.
  process.env.MALARIA_WASM_THREADS = '1';
  await loadBothBackends();
});

describe('foldBatchNorm', () => {
  it('gives the probabilities of a tutorial-shaped ResNet with identity modules, on cpu and on wasm', async () => {
    const { x, count } = await cells(6, 32);
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      const model = buildResNet({ inputSize: 32, classes: 2, stages: [2, 2, 1], filters: [4, 8, 8, 16], seed: 3 });
      randomiseBatchNorms(model, `tutorial ${backend}`);
      spreadOutputs(model, x, count);
      expect(await foldedDifference(model, x, count), backend).toBeLessThan(1e-5);
      model.dispose();
    }
  });

  it('gives the probabilities of the laptop network on real cells at 48x48, with and without --tta (wasm)', async () => {
    await tf.setBackend('wasm');
    const { stages, filters, imageSize } = PRESETS.laptop;
    const { x, count } = await cells(8, imageSize);
    const model = buildResNet({ inputSize: imageSize, classes: 2, stages, filters, seed: 5 });
    randomiseBatchNorms(model, 'laptop');
    spreadOutputs(model, x, count);
    expect(await foldedDifference(model, x, count)).toBeLessThan(1e-5);
    expect(await foldedDifference(model, x, count, true)).toBeLessThan(1e-5);
    model.dispose();
  });

  it('gives the probabilities of a model after a training step (the statistics training left)', async () => {
    await tf.setBackend('cpu');
    const { model, optimizer } = await trainedModel(11);
    const { x, count } = await cells(6, 32);
    spreadOutputs(model, x, count);
    expect(await foldedDifference(model, x, count)).toBeLessThan(1e-5);
    optimizer.dispose();
    model.dispose();
  });

  it('folds a model read back from its folder, as predict and evaluate load it', async () => {
    await tf.setBackend('wasm');
    const { x, count } = await cells(6, 32);
    await withTempDir(async (dir) => {
      const written = tinyResNet(6);
      randomiseBatchNorms(written, 'saved');
      await saveModel(dir, written, tinyMetadata());
      written.dispose();
      const { model } = await loadModel(dir);
      spreadOutputs(model, x, count);
      expect(await foldedDifference(model, x, count)).toBeLessThan(1e-5);
      model.dispose();
    });
  });

  it('keeps its own copy of the weights: changing or disposing the model after does not change it', async () => {
    await tf.setBackend('cpu');
    const { x, count } = await cells(4, 32);
    const model = buildResNet({ inputSize: 32, classes: 2, stages: [1, 1, 1], filters: [4, 4, 8, 8], seed: 2 });
    randomiseBatchNorms(model, 'copy');
    spreadOutputs(model, x, count);
    const before = predictValues(model, x, count);
    const folded = (await foldBatchNorm(model))!;
    randomiseBatchNorms(model, 'changed');
    expect(maxDifference(predictValues(model, x, count), before)).toBeGreaterThan(1e-3);
    model.dispose();
    expect(maxDifference(await batchProbabilities(tf, folded, x, count), before)).toBeLessThan(1e-5);
    folded.dispose();
  });

  it('leaves the tensor count and the wasm memory as they were', async () => {
    await tf.setBackend('wasm');
    const { x, count } = await cells(4, 48);
    const { stages, filters, imageSize } = PRESETS.laptop;
    const model = buildResNet({ inputSize: imageSize, classes: 2, stages, filters, seed: 4 });
    await batchProbabilities(tf, model, x, count); // the backend's first-use allocations happen here
    const tensors = tf.memory().numTensors;
    const data = tf.engine().backend.numDataIds();
    for (let round = 0; round < 2; round++) {
      const folded = (await foldBatchNorm(model))!;
      for (let i = 0; i < 2; i++) await batchProbabilities(tf, folded, x, count, { tta: i === 1 });
      folded.dispose();
      expect(tf.memory().numTensors).toBe(tensors);
      expect(tf.engine().backend.numDataIds()).toBe(data);
    }
    await withInferenceNetwork(model, (network) => batchProbabilities(tf, network, x, count));
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });
});

describe('models the fold does not handle', () => {
  const image = () => tf.input({ shape: [8, 8, 3] });
  const conv = (config: Partial<Parameters<typeof tf.layers.conv2d>[0]> = {}) =>
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', ...config });
  const head = (x: tf.SymbolicTensor) =>
    tf.layers
      .dense({ units: 2, activation: 'softmax' })
      .apply(tf.layers.flatten().apply(x) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const unsupported: Record<string, () => tf.LayersModel> = {
    'global average pooling': () => {
      const input = image();
      const pooled = tf.layers.globalAveragePooling2d({}).apply(input) as tf.SymbolicTensor;
      return tf.model({
        inputs: input,
        outputs: tf.layers.dense({ units: 2, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor,
      });
    },
    'a layer applied twice': () => {
      const input = image();
      const shared = conv({ filters: 3 });
      const twice = shared.apply(shared.apply(input)) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: head(twice) });
    },
    'a dilated convolution': () => {
      const input = image();
      return tf.model({ inputs: input, outputs: head(conv({ dilationRate: 2 }).apply(input) as tf.SymbolicTensor) });
    },
    'a tanh activation': () => {
      const input = image();
      return tf.model({ inputs: input, outputs: head(conv({ activation: 'tanh' }).apply(input) as tf.SymbolicTensor) });
    },
    'two outputs': () => {
      const input = image();
      const features = conv().apply(input) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: [head(features), head(features)] });
    },
  };

  for (const [name, build] of Object.entries(unsupported)) {
    it(`${name}: not folded, and withInferenceNetwork runs the model itself`, async () => {
      await tf.setBackend('cpu');
      const model = build();
      const tensors = tf.memory().numTensors;
      expect(await foldBatchNorm(model)).toBeUndefined();
      expect(await withInferenceNetwork(model, async (network) => network === model)).toBe(true);
      expect(tf.memory().numTensors).toBe(tensors);
      model.dispose();
    });
  }

  it('a foldable model that is not a ResNet (conv with ReLU, pooling, dense softmax) gives its probabilities', async () => {
    await tf.setBackend('cpu');
    const input = tf.input({ shape: [32, 32, 3] });
    const features = conv({
      filters: 8,
      activation: 'relu',
      strides: 2,
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }).apply(input);
    const pooled = tf.layers.averagePooling2d({ poolSize: 4 }).apply(features) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: head(pooled) });
    const { x, count } = await cells(4, 32);
    spreadOutputs(model, x, count);
    expect(await withInferenceNetwork(model, async (network) => network !== model)).toBe(true);
    expect(await foldedDifference(model, x, count)).toBeLessThan(1e-6);
    model.dispose();
  });
});
