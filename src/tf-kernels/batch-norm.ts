// FusedBatchNorm (tf.batchNorm) on wasm as a 1x1 depthwise convolution with bias: y = x * a + b per channel, with
// a = scale / sqrt(variance + epsilon) and b = offset - mean * a. XNNPACK runs that as one SIMD multiply-add
// pass, about eight times faster than wasm's FusedBatchNorm, whose C++ loop works out the channel of every
// element. Batch norm runs on every activation of the ResNet, in training and in inference.
import { tf } from '../tf.js';
import { withKernelScope } from './kernel-scope.js';
import { asWasmBackend, floatIndex, heapF32 } from './wasm-heap.js';

interface BatchNormInputs {
  x: tf.TensorInfo;
  mean: tf.TensorInfo;
  variance: tf.TensorInfo;
  offset?: tf.TensorInfo;
  scale?: tf.TensorInfo;
}

export function makeFusedBatchNormKernel(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs as unknown as BatchNormInputs;
    const { varianceEpsilon } = args.attrs as { varianceEpsilon: number };
    const channels = x.shape[x.shape.length - 1];
    const size = x.shape.reduce((a, b) => a * b, 1);
    const perChannel = (t: tf.TensorInfo | undefined) =>
      t == null || (t.shape.length === 1 && t.shape[0] === channels && t.dtype === 'float32');
    if (x.dtype !== 'float32' || size === 0 || ![mean, variance, offset, scale].every(perChannel)) {
      if (!fallback) throw new Error('FusedBatchNorm: unsupported shapes on wasm');
      return fallback(args);
    }
    return withKernelScope(args.backend, 'wasm', (scope) => {
      const backend = asWasmBackend(scope.backend);
      const filter = scope.alloc([1, 1, channels, 1]);
      const bias = scope.alloc([channels]);
      const heap = heapF32(backend);
      const at = (t: tf.TensorInfo | undefined, fallbackValue: number) => {
        if (!t) return () => fallbackValue;
        const start = floatIndex(backend, t);
        return (c: number) => heap[start + c];
      };
      const [m, v, o, s] = [at(mean, 0), at(variance, 1), at(offset, 0), at(scale, 1)];
      const a = floatIndex(backend, filter);
      const b = floatIndex(backend, bias);
      for (let c = 0; c < channels; c++) {
        const multiplier = s(c) / Math.sqrt(v(c) + varianceEpsilon);
        heap[a + c] = multiplier;
        heap[b + c] = o(c) - m(c) * multiplier;
      }
      // Any rank: the channels stay last, everything else becomes the height of one image.
      const image = x.shape.length === 4 ? x : scope.reshape(x, [1, size / channels, 1, channels]);
      const y = scope.run(
        'FusedDepthwiseConv2D',
        { x: image, filter, bias },
        { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], activation: 'linear' },
      );
      return x.shape.length === 4 ? y : scope.reshape(y, x.shape);
    });
  };
}
