// Which tfjs-node package loads and whether it really uses a GPU. Neither package can be installed here (their
// install downloads libtensorflow), so the import is replaced by a fake that registers a 'tensorflow' backend
// object carrying the flag tfjs-node's own backend sets (isUsingGpuDevice).
import { afterEach, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { describeTensorflowDevice, loadTensorflow } from '../../src/backends/tensorflow.js';

const missing = (name: string) =>
  Object.assign(new Error(`Cannot find package '${name}' imported from src/backends/tensorflow.ts`), {
    code: 'ERR_MODULE_NOT_FOUND',
  });

/** An importer where only `installed` exists; importing it registers a backend whose device is a GPU or not. */
function importer(installed: string, usesGpu: boolean) {
  const imported: string[] = [];
  const importPackage = async (name: string) => {
    imported.push(name);
    if (name !== installed) throw missing(name);
    const Cpu = tf.findBackend('cpu').constructor as new () => tf.KernelBackend;
    tf.registerBackend('tensorflow', () => Object.assign(new Cpu(), { isUsingGpuDevice: usesGpu }));
  };
  return { imported, importPackage };
}

describe('loadTensorflow', () => {
  afterEach(async () => {
    if (tf.findBackendFactory('tensorflow')) tf.removeBackend('tensorflow');
    await selectBackend('cpu');
  });

  it('reads from the loaded backend whether tfjs-node-gpu found a GPU', async () => {
    await selectBackend('cpu');
    const { importPackage } = importer('@tensorflow/tfjs-node-gpu', true);
    expect(await loadTensorflow(importPackage)).toEqual({ package: '@tensorflow/tfjs-node-gpu', gpu: true });
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('says when tfjs-node-gpu runs on the CPU, why, and what to do', async () => {
    const { importPackage } = importer('@tensorflow/tfjs-node-gpu', false);
    const device = await loadTensorflow(importPackage);
    expect(device).toEqual({ package: '@tensorflow/tfjs-node-gpu', gpu: false });
    expect(describeTensorflowDevice(device)).toBe(
      'on the CPU: @tensorflow/tfjs-node-gpu found no usable GPU (the CUDA 11.2 and cuDNN 8.1 libraries were not found); install those versions, or use --backend webgpu',
    );
  });

  it('takes the plain CPU build @tensorflow/tfjs-node when tfjs-node-gpu is absent', async () => {
    const { imported, importPackage } = importer('@tensorflow/tfjs-node', false);
    const device = await loadTensorflow(importPackage);
    expect(imported).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
    expect(describeTensorflowDevice(device)).toBe('on the CPU (@tensorflow/tfjs-node, the CPU build)');
  });

  it('says not installed when neither is, and does not hide a broken install behind the other package', async () => {
    await expect(loadTensorflow(importer('none', false).importPackage)).rejects.toThrow(
      /^Cannot find package @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node$/,
    );
    const broken = async () => {
      throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');
    };
    await expect(loadTensorflow(broken)).rejects.toThrow(/libtensorflow\.so\.2/);
  });
});
