import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { buildResNet, finalMapSize, parameterCounts, resolveArchitecture } from '../../src/model/resnet.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

function layersOfClass(model: tf.LayersModel, className: string): tf.layers.Layer[] {
  return model.layers.filter((layer) => layer.getClassName() === className);
}

describe('buildResNet', () => {
  it('has the tutorial network’s parameter count with the defaults on 64x64x3 and 2 classes', () => {
    const model = buildResNet({ inputSize: 64, classes: 2, seed: 1 });
    try {
      // Derivation (BN holds 4 numbers per channel: gamma, beta, moving mean, moving variance; convs have no bias).
      // A bottleneck module from C to K channels: bn1 4C + conv1 C*K/4 + bn2 K + conv2 9*(K/4)^2 + bn3 K
      //   + conv3 (K/4)*K [+ shortcut C*K when it reduces].
      // stem: BN(3) 12 + conv 3*3*3*64 1,728                                              =     1,740
      // stage 1 (K=128): reducing module from 64: 24,064; 2 more from 128: 2 * 18,176   =    60,416
      // stage 2 (K=256): reducing module from 128: 95,232; 3 more: 3 * 71,168           =   308,736
      // stage 3 (K=512): reducing module from 256: 378,880; 5 more: 5 * 281,600         = 1,786,880
      // head: BN(512) 2,048 + Dense(2*2*512 -> 2) 4,096 + bias 2                          =     6,146
      // total                                                                             = 2,163,918
      expect(model.countParams()).toBe(2_163_918);
      // Of which the BN moving statistics (2 per channel over 6,787 BN channels) are not trained. PyTorch counts
      // only parameters, not these running-stat buffers: /work/shared/bench/torch_resnet.py prints
      // "params 2150344" for the same network, and its buffers hold 13,574 numbers (measured).
      const count = (weights: tf.LayerVariable[]) =>
        weights.reduce((sum, w) => sum + w.shape.reduce((a: number, b) => a * (b as number), 1), 0);
      expect(count(model.nonTrainableWeights)).toBe(13_574);
      expect(count(model.trainableWeights)).toBe(2_150_344);
      // What `train` prints and the README quotes.
      expect(parameterCounts(model)).toEqual({ total: 2_163_918, trainable: 2_150_344 });
      expect(model.outputs[0].shape).toEqual([null, 2]);
      // 8x8 pooling of the 16x16 final map leaves 2x2xK features for the classifier.
      expect(model.getLayer('head_pool').outputShape).toEqual([null, 2, 2, 512]);
    } finally {
      model.dispose();
    }
  });

  it('follows the tutorial’s layer recipe: BN settings, L2 on every kernel, no conv bias, softmax output', () => {
    const model = buildResNet({ inputSize: 32, classes: 3, stages: [2, 1], filters: [8, 16, 32], l2: 1e-3 });
    try {
      const convs = layersOfClass(model, 'Conv2D');
      // stem + 3 per module (3 modules) + 1 shortcut per stage (2 stages)
      expect(convs).toHaveLength(1 + 3 * 3 + 2);
      for (const conv of convs) {
        const config = conv.getConfig();
        expect(config.useBias).toBe(false);
        expect(conv.getWeights()).toHaveLength(1);
        expect((config.kernelRegularizer as { config: { l2: number } }).config.l2).toBeCloseTo(1e-3, 10);
      }
      const batchNorms = layersOfClass(model, 'BatchNormalization');
      // stem + 3 per module + head
      expect(batchNorms).toHaveLength(1 + 3 * 3 + 1);
      for (const bn of batchNorms) {
        expect(bn.getConfig().epsilon).toBe(2e-5);
        expect(bn.getConfig().momentum).toBe(0.9);
      }
      const dense = layersOfClass(model, 'Dense');
      expect(dense).toHaveLength(1);
      expect((dense[0].getConfig().kernelRegularizer as { config: { l2: number } }).config.l2).toBeCloseTo(1e-3, 10);
      // One L2 penalty per conv kernel and the dense kernel.
      const penalties = model.calculateLosses();
      expect(penalties).toHaveLength(convs.length + 1);
      tf.dispose(penalties);
      // Stage 1 keeps the size (stride 1), stage 2 halves it; reducing modules project the shortcut.
      expect(model.getLayer('stage1_block1_add').outputShape).toEqual([null, 32, 32, 16]);
      expect(model.getLayer('stage2_block1_shortcut').outputShape).toEqual([null, 16, 16, 32]);
      expect(model.getLayer('stage2_block1_conv2').outputShape).toEqual([null, 16, 16, 8]);
      const probabilities = tf.tidy(
        () => model.predict(tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 5)) as tf.Tensor,
      );
      const sums = probabilities.sum(-1);
      expect(Array.from(sums.dataSync())).toEqual([expect.closeTo(1, 5), expect.closeTo(1, 5)]);
      tf.dispose([probabilities, sums]);
    } finally {
      model.dispose();
    }
  });

  it('pools 8x8 when the final map allows it and the whole map when it is smaller', () => {
    expect(finalMapSize(64, 3)).toBe(16);
    expect(finalMapSize(32, 3)).toBe(8);
    expect(finalMapSize(20, 3)).toBe(5);
    for (const [inputSize, expected] of [
      [64, [null, 2, 2, 8]], // 16x16 map, 8x8 pool
      [48, [null, 1, 1, 8]], // 12x12 map, 8x8 pool (valid padding drops the remainder, as in Keras)
      [32, [null, 1, 1, 8]], // 8x8 map, 8x8 pool
      [20, [null, 1, 1, 8]], // 5x5 map: an 8x8 pool would be invalid, so 5x5
    ] as const) {
      const model = buildResNet({ inputSize, classes: 2, stages: [1, 1, 1], filters: [4, 4, 8, 8] });
      try {
        expect(model.getLayer('head_pool').outputShape).toEqual(expected);
      } finally {
        model.dispose();
      }
    }
  });

  it('starts from the same weights for the same seed and from different ones for another', () => {
    const options = { inputSize: 32, classes: 2, stages: [1, 1, 1], filters: [4, 4, 8, 8] };
    const [a, b, c] = [
      buildResNet({ ...options, seed: 11 }),
      buildResNet({ ...options, seed: 11 }),
      buildResNet({ ...options, seed: 12 }),
    ];
    try {
      const kernel = (model: tf.LayersModel) => Array.from(model.getLayer('stem_conv').getWeights()[0].dataSync());
      expect(kernel(a)).toEqual(kernel(b));
      expect(kernel(a)).not.toEqual(kernel(c));
    } finally {
      for (const model of [a, b, c]) model.dispose();
    }
  });

  it('rejects filters that do not fit the stages', () => {
    expect(() => resolveArchitecture({ inputSize: 32, classes: 2, stages: [1, 1], filters: [8, 16] })).toThrow(
      /3 entries/,
    );
    expect(() => resolveArchitecture({ inputSize: 32, classes: 2, stages: [1], filters: [8, 10] })).toThrow(
      /multiples of 4/,
    );
  });
});
