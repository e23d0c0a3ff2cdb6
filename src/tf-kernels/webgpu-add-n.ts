// AddN on the webgpu backend, within the device's storage-buffer limit.
//
// tfjs-backend-webgpu's AddN binds every input as its own storage buffer. A shader stage may bind at most
// device.limits.maxStorageBuffersPerShaderStage of them (8 by default, 16 on llvmpipe when asked for), and the L2
// penalty of the tutorial ResNet sums ~55 kernels: the pipeline was invalid, and the sum silently came back as
// zeros. Every AddN goes through this kernel, which sums at most (limit - 1) inputs per program (one buffer is
// the output) and then sums the partial sums. tfjs' Concat already splits its inputs the same way; no other
// webgpu kernel takes a variable number of inputs.
import { tf } from '../tf.js';

type KernelFunc = tf.KernelConfig['kernelFunc'];
interface WebgpuBackendLimits {
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
  disposeData(dataId: tf.DataId): void;
}

/** Largest number of inputs one AddN program may bind on `backend`. */
function inputsPerProgram(backend: WebgpuBackendLimits): number {
  return Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
}

function chunkedAddN(original: KernelFunc): KernelFunc {
  const addN: KernelFunc = (args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const backend = args.backend as unknown as WebgpuBackendLimits;
    const limit = inputsPerProgram(backend);
    if (inputs.length <= limit) return original(args);
    const partials: tf.TensorInfo[] = [];
    for (let start = 0; start < inputs.length; start += limit) {
      const chunk = inputs.slice(start, start + limit);
      partials.push(addN({ ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo);
    }
    const sum = addN({ ...args, inputs: partials as unknown as tf.NamedTensorInfoMap });
    // A one-input chunk comes back as an Identity of its input, which shares the data: disposing is a refcount.
    for (const partial of partials) backend.disposeData(partial.dataId);
    return sum;
  };
  return addN;
}

const registered = new WeakSet<object>();

/** Replaces the webgpu backend's AddN with the chunked one (once; later calls do nothing). */
export function registerChunkedAddN(): void {
  const config = tf.getKernel('AddN', 'webgpu');
  if (!config) throw new Error('tfjs-backend-webgpu registered no AddN kernel');
  if (registered.has(config.kernelFunc)) return;
  const kernelFunc = chunkedAddN(config.kernelFunc);
  registered.add(kernelFunc);
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({ ...config, kernelFunc });
}
