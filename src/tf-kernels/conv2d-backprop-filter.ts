// Conv2DBackpropFilter (the filter gradient of conv2d) for the wasm backend, which ships none.
//
// dW[kh,kw,ci,co] = sum_{n,y,x} X[n, y*sh+kh-pt, x*sw+kw-pl, ci] * dY[n,y,x,co]. For one tap (kh,kw), the output
// pixels whose input pixel lies inside X form a rectangle of each image, so the tap's sum over an image is one
// call of our SIMD function (filter-grad-wasm.ts), which reads X and dY where they lie, in NHWC: no padded
// copy, no re-layout, no GEMM. The images go a band of output rows at a time, all taps of a band before the
// next, so that the band's rows of X and dY stay in cache while every tap and channel tile re-reads them.
import { tf } from '../tf.js';
import { convGeometry, type ConvAttrs, type ConvGeometry } from './conv-geometry.js';
import { accumulateTapFor, type AccumulateTap } from './filter-grad-wasm.js';
import { KernelScope, withKernelScope } from './kernel-scope.js';
import { asWasmBackend, byteOffset, floatIndex, heapF32 } from './wasm-heap.js';

type Shape4 = [number, number, number, number];

const FLOAT_BYTES = 4;

/** Bytes of X and dY rows per band: about half of L1 (measured: 16-32 KB alike, whole images 10-20% slower). */
const BAND_BYTES = 32 * 1024;

/** The output indices o < outSize whose input index o*stride + shift lies in [0, inSize), as [first, end). */
function insideRange(shift: number, stride: number, inSize: number, outSize: number): [number, number] {
  const first = Math.max(0, Math.ceil(-shift / stride));
  const end = Math.min(outSize, Math.floor((inSize - 1 - shift) / stride) + 1);
  return [first, Math.max(first, end)];
}

/**
 * Adds every tap's products to `sums` ([taps, inChannels, dyChannels], zeroed). Byte offsets in the heap; dY's
 * pixels are `dyChannels` apart, a multiple of 4.
 */
function sumTaps(accumulate: AccumulateTap, g: ConvGeometry, x: number, dy: number, sums: number, dyChannels: number) {
  const { batch, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = g;
  const { strideHeight: sh, strideWidth: sw, padTop, padLeft } = g;
  const columns = Array.from({ length: filterWidth }, (_, kw) => insideRange(kw - padLeft, sw, inWidth, outWidth));
  const rowBytes = outWidth * (sh * inChannels + dyChannels) * FLOAT_BYTES;
  const bandRows = Math.min(outHeight, Math.max(1, Math.floor(BAND_BYTES / rowBytes)));
  const xRowStride = sh * inWidth * inChannels * FLOAT_BYTES;
  const xColStride = sw * inChannels * FLOAT_BYTES;
  const dyColStride = dyChannels * FLOAT_BYTES;
  const dyRowStride = outWidth * dyColStride;
  for (let n = 0; n < batch; n++) {
    for (let bandStart = 0; bandStart < outHeight; bandStart += bandRows) {
      const bandEnd = Math.min(outHeight, bandStart + bandRows);
      for (let kh = 0; kh < filterHeight; kh++) {
        const [rowsFirst, rowsEnd] = insideRange(kh - padTop, sh, inHeight, outHeight);
        const first = Math.max(bandStart, rowsFirst);
        const rows = Math.min(bandEnd, rowsEnd) - first;
        if (rows <= 0) continue;
        for (let kw = 0; kw < filterWidth; kw++) {
          const [colsFirst, colsEnd] = columns[kw];
          if (colsEnd === colsFirst) continue;
          const inRow = n * inHeight + first * sh + kh - padTop;
          const inCol = colsFirst * sw + kw - padLeft;
          accumulate(
            x + (inRow * inWidth + inCol) * inChannels * FLOAT_BYTES,
            dy + ((n * outHeight + first) * outWidth + colsFirst) * dyColStride,
            sums + (kh * filterWidth + kw) * inChannels * dyColStride,
            rows,
            colsEnd - colsFirst,
            xRowStride,
            xColStride,
            dyRowStride,
            dyColStride,
            inChannels,
            dyChannels,
            dyColStride,
          );
        }
      }
    }
  }
}

/** dY with each pixel's channels padded with zeros to `channels` (the SIMD loop reads whole vectors of 4). */
function padChannels(scope: KernelScope, dy: tf.TensorInfo, channels: number): tf.TensorInfo {
  const backend = asWasmBackend(scope.backend);
  const own = dy.shape[3];
  const pixels = dy.shape[0] * dy.shape[1] * dy.shape[2];
  const out = scope.alloc([pixels, channels]);
  const heap = heapF32(backend);
  const src = floatIndex(backend, dy);
  const dst = floatIndex(backend, out);
  heap.fill(0, dst, dst + pixels * channels);
  for (let p = 0; p < pixels; p++) heap.copyWithin(dst + p * channels, src + p * own, src + (p + 1) * own);
  return out;
}

export function conv2DBackpropFilter(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  filterShape: Shape4,
  attrs: ConvAttrs,
  scope: KernelScope,
): tf.TensorInfo {
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') throw new Error('Conv2DBackpropFilter: float32 only');
  const g = convGeometry(x.shape as Shape4, filterShape, attrs);
  const backend = asWasmBackend(scope.backend);
  const accumulate = accumulateTapFor(scope.backend);
  const { inChannels, outChannels } = g;
  const rows = g.filterHeight * g.filterWidth * inChannels;
  const dyChannels = Math.ceil(outChannels / 4) * 4;
  const dw = scope.alloc(filterShape);
  // The sums go straight into dW unless its rows need padding to whole vectors.
  const padded = dyChannels !== outChannels;
  const sums = padded ? scope.alloc([rows, dyChannels]) : dw;
  const dyPadded = padded ? padChannels(scope, dy, dyChannels) : dy;
  const heap = heapF32(backend);
  const sumsStart = floatIndex(backend, sums);
  heap.fill(0, sumsStart, sumsStart + rows * dyChannels);
  sumTaps(accumulate, g, byteOffset(backend, x), byteOffset(backend, dyPadded), byteOffset(backend, sums), dyChannels);
  if (padded) {
    const dst = floatIndex(backend, dw);
    for (let r = 0; r < rows; r++) {
      const src = sumsStart + r * dyChannels;
      heap.copyWithin(dst + r * outChannels, src, src + outChannels);
    }
  }
  return dw;
}

interface BackpropFilterAttrs extends ConvAttrs {
  filterShape: Shape4;
}

export const conv2DBackpropFilterKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const convAttrs = attrs as unknown as BackpropFilterAttrs;
  return withKernelScope(backend, 'wasm', (scope) =>
    conv2DBackpropFilter(x, dy, convAttrs.filterShape, convAttrs, scope),
  );
};
