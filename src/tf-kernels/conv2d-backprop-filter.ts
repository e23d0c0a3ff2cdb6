// Conv2DBackpropFilter (the filter gradient of conv2d) for the wasm backend, which ships none.
//
// dW[kh,kw,ci,co] = sum_{n,y,x} X[n, y*sh+kh-pt, x*sw+kw-pl, ci] * dY[n,y,x,co] is ONE matrix product:
// A [kh*kw*ci, n*y*x] times dY as [n*y*x, co], where row (kh,kw,ci) of A is the input channel ci as seen by
// filter tap (kh,kw). The rows come in the filter's own layout, so the product is dW with no transpose after.
// A is built by hand on the heap (a blocked transpose to channels-first, then one shifted, strided copy per
// tap); the product runs on XNNPACK's GEMM, which wasm's BatchMatMul uses only without transposed operands.
import { tf } from '../tf.js';
import { convGeometry, type ConvAttrs, type ConvGeometry } from './conv-geometry.js';
import { KernelScope, withKernelScope } from './kernel-scope.js';
import { consecutiveRows, gatherRows, gatherTap, gatherTransposed, stridedPixelRows } from './layout.js';
import { asWasmBackend, floatIndex, heapF32 } from './wasm-heap.js';

type Shape4 = [number, number, number, number];

/** Start indices of the input pixels a 1x1 unpadded convolution reads, one per output pixel. */
function sampledRows(scope: KernelScope, x: tf.TensorInfo, g: ConvGeometry): Int32Array {
  const src = floatIndex(asWasmBackend(scope.backend), x);
  const strided = g.strideHeight > 1 || g.strideWidth > 1 || g.outHeight !== g.inHeight || g.outWidth !== g.inWidth;
  if (!strided) return consecutiveRows(src, g.batch * g.inHeight * g.inWidth, g.inChannels);
  return stridedPixelRows(
    src,
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.strideHeight,
    g.strideWidth,
  );
}

/**
 * 1x1 filter without padding: dW = Xs^T dY, with Xs the input at the strided positions. The smaller of Xs and
 * dY is the one transposed: dW^T = dY^T Xs when dY has fewer channels.
 */
function pointwiseFilterGrad(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, g: ConvGeometry) {
  const backend = asWasmBackend(scope.backend);
  const { inChannels: ci, outChannels: co } = g;
  const pixels = g.batch * g.outHeight * g.outWidth;
  const strided = pixels !== g.batch * g.inHeight * g.inWidth;
  if (co < ci) {
    const dyT = scope.alloc([co, pixels]);
    const sampled = strided ? scope.alloc([pixels, ci]) : scope.reshape(x, [pixels, ci]);
    const heap = heapF32(backend);
    gatherTransposed(heap, consecutiveRows(floatIndex(backend, dy), pixels, co), co, floatIndex(backend, dyT));
    if (strided) gatherRows(heap, sampledRows(scope, x, g), ci, floatIndex(backend, sampled));
    const dWT = scope.matMul2d(dyT, sampled);
    return scope.reshape(scope.transpose(dWT, [1, 0]), [1, 1, ci, co]);
  }
  const xT = scope.alloc([ci, pixels]);
  gatherTransposed(heapF32(backend), sampledRows(scope, x, g), ci, floatIndex(backend, xT));
  const dW = scope.matMul2d(xT, scope.reshape(dy, [pixels, co]));
  return scope.reshape(dW, [1, 1, ci, co]);
}

/** Any filter size, stride and padding: the tap-major matrix A, then one product. */
function tapsFilterGrad(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, g: ConvGeometry) {
  const backend = asWasmBackend(scope.backend);
  const { batch, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co } = g;
  const pixels = batch * outHeight * outWidth;
  const taps = g.filterHeight * g.filterWidth;
  const channelsFirst = scope.alloc([ci, batch, inHeight, inWidth]);
  const a = scope.alloc([taps * ci, pixels]);
  const heap = heapF32(backend);
  const inPixels = batch * inHeight * inWidth;
  gatherTransposed(heap, consecutiveRows(floatIndex(backend, x), inPixels, ci), ci, floatIndex(backend, channelsFirst));
  const geometry = {
    planes: ci * batch,
    inHeight,
    inWidth,
    outHeight,
    outWidth,
    strideHeight: g.strideHeight,
    strideWidth: g.strideWidth,
  };
  const src = floatIndex(backend, channelsFirst);
  let dst = floatIndex(backend, a);
  for (let kh = 0; kh < g.filterHeight; kh++) {
    for (let kw = 0; kw < g.filterWidth; kw++) {
      gatherTap(heap, src, dst, geometry, kh - g.padTop, kw - g.padLeft);
      dst += ci * pixels;
    }
  }
  scope.release(channelsFirst);
  const dW = scope.matMul2d(a, scope.reshape(dy, [pixels, co]));
  return scope.reshape(dW, [g.filterHeight, g.filterWidth, ci, co]);
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
  if (g.filterHeight === 1 && g.filterWidth === 1 && g.padTop === 0 && g.padLeft === 0) {
    return pointwiseFilterGrad(scope, x, dy, g);
  }
  return tapsFilterGrad(scope, x, dy, g);
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
