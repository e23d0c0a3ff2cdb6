// The webgpu backend on the machine's WebGPU device (in CI: Mesa's software Vulkan device, llvmpipe, installed by
// scripts/test-setup.sh): sums of many tensors, and a tiny ResNet's training step against the cpu backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend, tf } from '../../src/tf.js';
import { buildResNet } from '../../src/model/resnet.js';
import { regularizationPenalty, trainModel } from '../../src/model/train.js';
import { tinyResNet, tinySettings } from '../support/models.js';
import { syntheticSource } from '../support/sources.js';
import { expectClose, onBackend, randomHost, toTensor } from '../support/backends.js';
import { expectStepMatchesCpu, STEP_RESNET } from '../support/resnet-step.js';

/** The number of storage buffers one webgpu program may bind on this device. */
function storageBufferLimit(): number {
  const backend = tf.findBackend('webgpu') as unknown as {
    device: { limits: { maxStorageBuffersPerShaderStage: number } };
  };
  return backend.device.limits.maxStorageBuffersPerShaderStage;
}

describe('the webgpu backend', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
    await selectBackend('webgpu');
  });

  it('sums more tensors in one addN than a program may bind, as cpu does', async () => {
    const count = 3 * storageBufferLimit() + 2;
    const inputs = Array.from({ length: count }, (_, i) => randomHost([7, 5], `addn/${i}`));
    const sum = () => [tf.addN(inputs.map(toTensor))];
    const [expected] = await onBackend('cpu', sum);
    const [actual] = await onBackend('webgpu', sum);
    expectClose(actual, expected, 1e-6, `addN of ${count}`);
  });

  it('computes the L2 penalty of a ResNet with more kernels than a program may bind, as cpu does', async () => {
    await tf.setBackend('cpu');
    const model = buildResNet(STEP_RESNET);
    const weights = model.getWeights().map((w) => ({ shape: w.shape.slice(), values: w.dataSync() as Float32Array }));
    expect(model.calculateLosses().length).toBeGreaterThan(storageBufferLimit());
    const [expected] = await onBackend('cpu', () => [regularizationPenalty(model)]);
    model.dispose();
    await tf.setBackend('webgpu');
    const onGpu = buildResNet(STEP_RESNET);
    onGpu.setWeights(weights.map(toTensor));
    const [actual] = await onBackend('webgpu', () => [regularizationPenalty(onGpu)]);
    onGpu.dispose();
    expectClose(actual, expected, 1e-5, 'L2 penalty');
  });

  it('gives a tiny ResNet training step the same loss and every gradient as cpu', () =>
    expectStepMatchesCpu('webgpu', 1e-5, 1e-4));
});

describe('training on webgpu', () => {
  beforeAll(() => selectBackend('webgpu'));

  it('keeps the tensor count flat from epoch to epoch', async () => {
    await tf.setBackend('webgpu');
    const model = tinyResNet(2);
    const counts: number[] = [];
    const result = await trainModel(
      model,
      syntheticSource(8, 3, 8),
      syntheticSource(8, 4, 8),
      tinySettings({ epochs: 3 }),
      {
        onEpochEnd: (info) => void counts.push(info.tensors),
      },
    );
    model.dispose();
    expect(result.history.loss.every(Number.isFinite)).toBe(true);
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
  });
});
