// The ResNet of the Keras malaria tutorial (pyimagesearch's ResNet.build): bottleneck residual modules with
// pre-activation batch norm, L2 on every kernel, average pooling and a softmax classifier.
import { tf } from '../tf.js';
import { TRAIN_DEFAULTS } from '../config.js';

export interface ResNetOptions {
  /** Height and width of the (square) input images. */
  inputSize: number;
  channels?: number;
  classes: number;
  /** Residual modules per stage. */
  stages?: readonly number[];
  /** filters[0] for the stem convolution, filters[i + 1] for stage i. */
  filters?: readonly number[];
  /** L2 factor on every convolution and dense kernel (Keras l2(reg): reg * sum(w^2)). */
  l2?: number;
  /** Seeds the kernel initialisers so two builds with the same seed start identical. */
  seed?: number;
}

/** The architecture a built ResNet was made with (stored in metadata.json). */
export interface ResNetArchitecture {
  inputSize: number;
  channels: number;
  classes: number;
  stages: number[];
  filters: number[];
  l2: number;
}

// Keras BatchNormalization(epsilon=2e-5, momentum=0.9) as in the tutorial. tfjs uses the same momentum meaning:
// moving = moving * momentum + batch * (1 - momentum).
const BN_EPSILON = 2e-5;
const BN_MOMENTUM = 0.9;
/** The tutorial's AveragePooling2D((8, 8)). */
const POOL_SIZE = 8;

export function resolveArchitecture(options: ResNetOptions): ResNetArchitecture {
  const arch: ResNetArchitecture = {
    inputSize: options.inputSize,
    channels: options.channels ?? 3,
    classes: options.classes,
    stages: [...(options.stages ?? TRAIN_DEFAULTS.stages)],
    filters: [...(options.filters ?? TRAIN_DEFAULTS.filters)],
    l2: options.l2 ?? TRAIN_DEFAULTS.l2,
  };
  if (arch.filters.length !== arch.stages.length + 1) {
    throw new Error(
      `filters needs ${arch.stages.length + 1} entries (stem + one per stage), got ${arch.filters.length}`,
    );
  }
  if (arch.filters.slice(1).some((k) => k % 4 !== 0)) {
    throw new Error('stage filters must be multiples of 4 (the bottleneck uses K/4 filters)');
  }
  return arch;
}

/** Spatial size of the last feature map: "same" convolutions keep the size, each stride-2 stage halves it (rounding up). */
export function finalMapSize(inputSize: number, stageCount: number): number {
  let size = inputSize;
  for (let i = 1; i < stageCount; i++) size = Math.ceil(size / 2);
  return size;
}

/** Builds the tutorial's ResNet as a functional tf.LayersModel (not compiled: the training loop is our own). */
export function buildResNet(options: ResNetOptions): tf.LayersModel {
  const arch = resolveArchitecture(options);
  const { channels, classes, stages, filters, l2 } = arch;
  let layerIndex = 0;
  // A distinct seed per initialiser; without a seed, tfjs draws from Math.random as Keras would.
  const kernelInitializer = () =>
    options.seed === undefined
      ? tf.initializers.glorotUniform({})
      : tf.initializers.glorotUniform({ seed: options.seed * 1000 + layerIndex++ });
  const regularizer = () => tf.regularizers.l2({ l2 });
  const conv = (name: string, kernel: number, units: number, strides = 1) =>
    tf.layers.conv2d({
      name,
      filters: units,
      kernelSize: kernel,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: kernelInitializer(),
      kernelRegularizer: regularizer(),
    });
  const bn = (name: string) =>
    tf.layers.batchNormalization({ name, axis: -1, epsilon: BN_EPSILON, momentum: BN_MOMENTUM });
  const relu = (name: string) => tf.layers.activation({ name, activation: 'relu' });

  const residualModule = (data: tf.SymbolicTensor, k: number, stride: number, reduce: boolean, name: string) => {
    const bn1 = bn(`${name}_bn1`).apply(data) as tf.SymbolicTensor;
    const act1 = relu(`${name}_relu1`).apply(bn1) as tf.SymbolicTensor;
    const conv1 = conv(`${name}_conv1`, 1, k / 4).apply(act1) as tf.SymbolicTensor;
    const bn2 = bn(`${name}_bn2`).apply(conv1) as tf.SymbolicTensor;
    const act2 = relu(`${name}_relu2`).apply(bn2) as tf.SymbolicTensor;
    const conv2 = conv(`${name}_conv2`, 3, k / 4, stride).apply(act2) as tf.SymbolicTensor;
    const bn3 = bn(`${name}_bn3`).apply(conv2) as tf.SymbolicTensor;
    const act3 = relu(`${name}_relu3`).apply(bn3) as tf.SymbolicTensor;
    const conv3 = conv(`${name}_conv3`, 1, k).apply(act3) as tf.SymbolicTensor;
    // The projection shortcut starts from act1 (after the first BN-ReLU), as in the tutorial.
    const shortcut = reduce ? (conv(`${name}_shortcut`, 1, k, stride).apply(act1) as tf.SymbolicTensor) : data;
    return tf.layers.add({ name: `${name}_add` }).apply([conv3, shortcut]) as tf.SymbolicTensor;
  };

  const input = tf.input({ shape: [arch.inputSize, arch.inputSize, channels], name: 'image' });
  let x = bn('stem_bn').apply(input) as tf.SymbolicTensor;
  x = conv('stem_conv', 3, filters[0]).apply(x) as tf.SymbolicTensor;
  stages.forEach((blocks, i) => {
    const k = filters[i + 1];
    x = residualModule(x, k, i === 0 ? 1 : 2, true, `stage${i + 1}_block1`);
    for (let j = 1; j < blocks; j++) x = residualModule(x, k, 1, false, `stage${i + 1}_block${j + 1}`);
  });
  x = bn('head_bn').apply(x) as tf.SymbolicTensor;
  x = relu('head_relu').apply(x) as tf.SymbolicTensor;
  // The tutorial pools 8x8. On 64x64 inputs the final map is 16x16, so the flatten holds 2x2xK features; on 32x32
  // it is 8x8 -> 1x1xK. A map smaller than 8 (inputs under 32 with three stages) would make a valid 8x8 pool
  // impossible, so the pool then covers the whole map (global average pooling). On 48x48 (the laptop preset) the
  // map is 12x12 and the valid 8x8 pool reads its top-left 8x8; pooling all of it was measured no better on the
  // validation patients (BENCHMARKS.md, row P), so Keras' behaviour stays.
  const mapSize = finalMapSize(arch.inputSize, stages.length);
  const pool = Math.min(POOL_SIZE, mapSize);
  x = tf.layers
    .averagePooling2d({ name: 'head_pool', poolSize: pool, strides: pool, padding: 'valid' })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'head_flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .dense({
      name: 'head_dense',
      units: classes,
      kernelInitializer: kernelInitializer(),
      kernelRegularizer: regularizer(),
    })
    .apply(x) as tf.SymbolicTensor;
  const output = tf.layers.activation({ name: 'softmax', activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'resnet' });
}

/**
 * The model's numbers: all of them (Keras' "Total params", tfjs' countParams), and those training changes. The
 * difference is batch norm's moving mean and variance, which PyTorch counts as buffers, not parameters.
 */
export function parameterCounts(model: tf.LayersModel): { total: number; trainable: number } {
  const count = (weights: tf.LayerVariable[]) =>
    weights.reduce((sum, w) => sum + w.shape.reduce((a: number, b) => a * (b as number), 1), 0);
  return { total: model.countParams(), trainable: count(model.trainableWeights) };
}

/** One convolution of a network as a kernel sees it, and how many of the network's convolutions share it. */
export interface ConvolutionShape {
  /** NHWC, at the batch asked for. */
  input: [number, number, number, number];
  /** [height, width, in channels, out channels]. */
  filter: [number, number, number, number];
  strides: [number, number];
  pad: 'same' | 'valid';
  count: number;
}

/** The distinct convolution shapes of the ResNet `options` builds, at `batch` images, in the order it first uses them. */
export function convolutionShapes(options: ResNetOptions, batch: number): ConvolutionShape[] {
  const model = buildResNet(options);
  const shapes = new Map<string, ConvolutionShape>();
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Conv2D') continue;
    const config = layer.getConfig() as {
      kernelSize: [number, number];
      strides: [number, number];
      padding: 'same' | 'valid';
      filters: number;
    };
    const [, height, width, channels] = (layer.input as tf.SymbolicTensor).shape as number[];
    const shape: ConvolutionShape = {
      input: [batch, height, width, channels],
      filter: [config.kernelSize[0], config.kernelSize[1], channels, config.filters],
      strides: config.strides,
      pad: config.padding,
      count: 1,
    };
    const key = JSON.stringify([shape.input, shape.filter, shape.strides, shape.pad]);
    const seen = shapes.get(key);
    if (seen) seen.count++;
    else shapes.set(key, shape);
  }
  model.dispose();
  return [...shapes.values()];
}
