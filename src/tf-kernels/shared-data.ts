// Identity, and Cast to the same dtype, that share the input's memory instead of copying it (as the cpu backend
// does). Tensors are immutable, so a second reference is safe. The engine clones every tensor it saves for the
// backward pass (Engine.saveTensorsForBackwardMode -> Identity), and tf.moments and several gradients cast
// float32 to float32: with wasm's copying kernels that was about 40% of a ResNet training step's allocations,
// which is what capped the micro-batch under wasm32's 4 GB.
import { tf } from '../tf.js';

function share(backend: unknown, x: tf.TensorInfo): tf.TensorInfo {
  (backend as tf.KernelBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function makeIdentityKernel(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') {
      if (!fallback) throw new Error('Identity: strings need the original wasm kernel');
      return fallback(args);
    }
    return share(args.backend, x);
  };
}

export function makeCastKernel(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { dtype } = args.attrs as { dtype: tf.DataType };
    if (dtype === x.dtype && dtype !== 'string') return share(args.backend, x);
    if (!fallback) throw new Error(`Cast to ${dtype} needs the original wasm kernel`);
    return fallback(args);
  };
}
