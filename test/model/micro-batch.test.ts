import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { activationsPerImage, chooseMicroBatch, outOfMemoryLine, wasmTrainBytes } from '../../src/model/micro-batch.js';
import { buildResNet } from '../../src/model/resnet.js';
import { PRESETS } from '../../src/model/presets.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

function activationsOf(options: Parameters<typeof buildResNet>[0]): number {
  const model = buildResNet(options);
  try {
    return activationsPerImage(model);
  } finally {
    model.dispose();
  }
}

describe('activationsPerImage', () => {
  it('sums every layer output for one image, the input included', () => {
    const input = tf.input({ shape: [4, 4, 3] });
    const conv = tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const dense = tf.layers.dense({ units: 2 }).apply(tf.layers.flatten().apply(conv)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: dense });
    // input 4*4*3 + conv 4*4*5 + flatten 80 + dense 2
    expect(activationsPerImage(model)).toBe(48 + 80 + 80 + 2);
    model.dispose();
  });
});

describe('chooseMicroBatch', () => {
  const tutorial = activationsOf({
    inputSize: 64,
    classes: 2,
    stages: PRESETS.tutorial.stages,
    filters: PRESETS.tutorial.filters,
  });
  const laptop = activationsOf({
    inputSize: PRESETS.laptop.imageSize,
    classes: 2,
    stages: PRESETS.laptop.stages,
    filters: PRESETS.laptop.filters,
  });

  it('on wasm halves the batch until the step fits: 8 for the tutorial ResNet, which ran out of 4 GB at 16', () => {
    expect(chooseMicroBatch('wasm', 32, tutorial)).toBe(8);
    // Measured: 8 images took 2.5 GB, 12 took 3.45 GB; the estimate must agree within a tenth.
    expect(wasmTrainBytes(8, tutorial) / 2.5e9).toBeCloseTo(1, 1);
    expect(wasmTrainBytes(12, tutorial) / 3.45e9).toBeCloseTo(1, 1);
  });

  it('on wasm keeps the whole batch for the laptop preset’s small net', () => {
    expect(laptop).toBeLessThan(tutorial / 5);
    expect(chooseMicroBatch('wasm', 32, laptop)).toBe(32);
    expect(chooseMicroBatch('wasm', 48, tutorial)).toBe(6);
  });

  it('keeps the batch on other backends, and a --micro-batch flag wins everywhere', () => {
    expect(chooseMicroBatch('cpu', 32, tutorial)).toBe(32);
    expect(chooseMicroBatch('webgpu', 32, tutorial)).toBe(32);
    expect(chooseMicroBatch('wasm', 32, laptop, 4)).toBe(4);
    expect(chooseMicroBatch('tensorflow', 32, tutorial, 16)).toBe(16);
  });
});

describe('outOfMemoryLine', () => {
  it('says in one line what changes: the micro-batch, for the rest of the run, and what batch norm now sees', () => {
    const line = outOfMemoryLine({ microBatch: 32, retryWith: 16 });
    expect(line).not.toMatch(/\n/);
    expect(line).toBe(
      'the GPU ran out of memory with 32 images per pass: retrying the batch, and training from now on, in micro-batches of 16 with summed gradients (batch norm sees 16 images at a time)',
    );
  });
});
