// AvgPoolGrad on wasm for pools whose windows tile the input (stride = window, no padding), as the ResNet's global
// average pooling before its classifier. wasm's C++ kernel loops over every window each input pixel could fall in:
// 27 ms a step for the laptop preset's 12x12x128 global pool at batch 32 (BENCHMARKS.md, issue 26). Without
// overlap, dx is each dy value divided by the window size and repeated over its window: one scaled channel vector
// per window, doubled in place with memmove (copyWithin), a pass over dx.
import { tf } from '../tf.js';
import { asWasmBackend, floatIndex, heapF32, repeatInPlace } from './wasm-heap.js';

interface PoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function makeAvgPoolGradKernel(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as PoolGradAttrs;
    const info =
      input.shape.length === 4
        ? tf.backend_util.computePool2DInfo(
            input.shape as [number, number, number, number],
            filterSize,
            strides,
            1,
            pad,
            dimRoundingMode,
          )
        : undefined;
    const { top, bottom, left, right } = info?.padInfo ?? {};
    const tiles =
      info !== undefined &&
      dy.dtype === 'float32' &&
      info.strideHeight === info.filterHeight &&
      info.strideWidth === info.filterWidth &&
      top === 0 &&
      bottom === 0 &&
      left === 0 &&
      right === 0;
    if (!tiles) {
      if (!fallback) throw new Error('AvgPoolGrad: unsupported pooling on wasm');
      return fallback(args);
    }
    const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
    const { filterHeight, filterWidth } = info;
    const backend = asWasmBackend(args.backend);
    const dx = backend.makeOutput(input.shape, 'float32');
    // After the allocation: it may grow the heap, which detaches earlier views.
    const heap = heapF32(backend);
    const scale = 1 / (filterHeight * filterWidth);
    const rowLength = inWidth * channels;
    let src = floatIndex(backend, dy);
    let dst = floatIndex(backend, dx);
    for (let n = 0; n < batchSize; n++) {
      for (let oy = 0; oy < outHeight; oy++) {
        const row = dst;
        for (let ox = 0; ox < outWidth; ox++) {
          for (let c = 0; c < channels; c++) heap[dst + c] = heap[src + c] * scale;
          repeatInPlace(heap, dst, channels, filterWidth);
          src += channels;
          dst += filterWidth * channels;
        }
        // Columns past the last whole window get no gradient ('valid' pooling drops them).
        heap.fill(0, dst, row + rowLength);
        repeatInPlace(heap, row, rowLength, filterHeight);
        dst = row + filterHeight * rowLength;
      }
      const imageEnd = floatIndex(backend, dx) + (n + 1) * inHeight * rowLength;
      heap.fill(0, dst, imageEnd);
      dst = imageEnd;
    }
    return dx;
  };
}
