// The tensorflow backend: libtensorflow through @tensorflow/tfjs-node-gpu (CUDA when it finds CUDA 11.2 and cuDNN
// 8.1, else the CPU) or the plain CPU build @tensorflow/tfjs-node. Neither installs where npm cannot download
// libtensorflow, so both are looked for at run time.
import { tf } from '../tf.js';

const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
export type TensorflowPackage = (typeof TENSORFLOW_PACKAGES)[number];

/** Which package loaded and whether its kernels run on a GPU. */
export interface TensorflowDevice {
  package: TensorflowPackage;
  gpu: boolean;
}

/**
 * tfjs-node's backend object (NodeJSKernelBackend) records what libtensorflow found: `isUsingGpuDevice` is true
 * only when a CUDA device was created, which needs the exact CUDA and cuDNN libraries TensorFlow 2.9 was built for.
 */
function tensorflowDevice(packageName: TensorflowPackage, backend: { isUsingGpuDevice?: unknown }): TensorflowDevice {
  return { package: packageName, gpu: backend.isUsingGpuDevice === true };
}

/** What the backend line says about the device: where it runs and, on the CPU, why and what to do. */
export function describeTensorflowDevice(device: TensorflowDevice): string {
  if (device.gpu) return `on the GPU (CUDA, ${device.package})`;
  if (device.package === '@tensorflow/tfjs-node') return `on the CPU (${device.package}, the CPU build)`;
  return (
    `on the CPU: ${device.package} found no usable GPU (the CUDA 11.2 and cuDNN 8.1 libraries were not found); ` +
    'install those versions, or use --backend webgpu'
  );
}

/** True when an import failed because `name` itself is absent (not one of its own dependencies or libraries). */
function isMissing(err: unknown, name: string): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes(name)
  );
}

/**
 * Imports the first of tfjs-node-gpu and tfjs-node that is installed (each registers the 'tensorflow' backend),
 * makes that backend active, and returns its device. `importPackage` is replaceable for tests.
 */
export async function loadTensorflow(
  importPackage: (name: string) => Promise<unknown> = (name) => import(name),
): Promise<TensorflowDevice> {
  for (const name of TENSORFLOW_PACKAGES) {
    try {
      await importPackage(name);
    } catch (err) {
      if (isMissing(err, name)) continue;
      throw err;
    }
    if (!(await tf.setBackend('tensorflow'))) throw new Error('the tensorflow backend did not initialise');
    return tensorflowDevice(name, tf.backend() as { isUsingGpuDevice?: unknown });
  }
  throw new Error(`Cannot find package ${TENSORFLOW_PACKAGES.join(' nor ')}`);
}
