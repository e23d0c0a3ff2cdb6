// Conv2DBackpropFilter (the filter gradient of conv2d) for the wasm backend, which ships none.
//
// dW[kh,kw,ci,co] = sum_{n,y,x} X[n, y*sh+kh-pt, x*sw+kw-pl, ci] * dY[n,y,x,co] is a matrix product:
// A [kh*kw*ci, n*y*x] times dY as [n*y*x, co], where row (kh,kw,ci) of A is the input channel ci as seen by
// filter tap (kh,kw). The rows come in the filter's own layout, so the product is dW with no transpose after.
// A is built by hand on the heap (a blocked transpose to channels-first, then one shifted, strided copy per
// tap); the product runs on XNNPACK's GEMM, which wasm's BatchMatMul uses only without transposed operands.
// Large batches are cut into chunks of images whose products are summed, to keep the GEMM in cache.
import { tf } from '../tf.js';
import { convGeometry, type ConvAttrs, type ConvGeometry } from './conv-geometry.js';
import { KernelScope, withKernelScope } from './kernel-scope.js';
import { gatherRows, gatherTap, gatherTransposed, stridedPixelRows, transposeRows } from './layout.js';
import { asWasmBackend, floatIndex, heapF32 } from './wasm-heap.js';

type Shape4 = [number, number, number, number];

/**
 * Output pixels per product. XNNPACK's GEMM does not block the shared dimension: with all n*y*x pixels of a
 * large batch in one product, its operands stream from L3/memory for every tile. Whole images are grouped into
 * chunks of about this many pixels and the chunk products are summed (25% faster at batch 8; 1024 to 8192 alike).
 */
const CHUNK_PIXELS = 4096;

/** [first image, image count] of each chunk. */
function imageChunks(batch: number, pixelsPerImage: number): [number, number][] {
  const perChunk = Math.max(1, Math.floor(CHUNK_PIXELS / pixelsPerImage));
  const chunks: [number, number][] = [];
  for (let n = 0; n < batch; n += perChunk) chunks.push([n, Math.min(perChunk, batch - n)]);
  return chunks;
}

/** Sums the chunk products (one AddN; nothing to add for a single chunk). */
function sumProducts(scope: KernelScope, products: tf.TensorInfo[]): tf.TensorInfo {
  return products.length === 1 ? products[0] : scope.run('AddN', products);
}

/** Start indices of the input pixels a strided 1x1 unpadded convolution reads, one per output pixel. */
function sampledRows(scope: KernelScope, x: tf.TensorInfo, g: ConvGeometry): Int32Array {
  const src = floatIndex(asWasmBackend(scope.backend), x);
  const { batch, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = g;
  return stridedPixelRows(src, batch, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth);
}

/** A new tensor holding rows [first, first + count) of a [rows, width] tensor. */
function copyRows(scope: KernelScope, t: tf.TensorInfo, width: number, first: number, count: number) {
  const backend = asWasmBackend(scope.backend);
  const out = scope.alloc([count, width]);
  const src = floatIndex(backend, t) + first * width;
  heapF32(backend).copyWithin(floatIndex(backend, out), src, src + count * width);
  return out;
}

/**
 * 1x1 filter without padding: dW = Xs^T dY, with Xs the input at the strided positions, or dW^T = dY^T Xs. The
 * product packs its second operand with a slow strided copy (about 5 ns a value), so the operand with fewer
 * channels goes second and the one with more is transposed by hand (measured 20% faster than the reverse).
 */
function pointwiseFilterGrad(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, g: ConvGeometry) {
  const backend = asWasmBackend(scope.backend);
  const { inChannels: ci, outChannels: co } = g;
  const pixelsPerImage = g.outHeight * g.outWidth;
  const strided = pixelsPerImage !== g.inHeight * g.inWidth;
  const rows = strided ? sampledRows(scope, x, g) : undefined;
  const transposeDy = co > ci;
  const products: tf.TensorInfo[] = [];
  for (const [first, count] of imageChunks(g.batch, pixelsPerImage)) {
    const [from, to] = [first * pixelsPerImage, (first + count) * pixelsPerImage];
    const a = scope.alloc(transposeDy ? [co, to - from] : [ci, to - from]);
    let b: tf.TensorInfo;
    if (transposeDy) {
      b = rows ? scope.alloc([to - from, ci]) : copyRows(scope, x, ci, from, to - from);
      const heap = heapF32(backend);
      transposeRows(heap, floatIndex(backend, dy) + from * co, to - from, co, floatIndex(backend, a));
      if (rows) gatherRows(heap, rows.subarray(from, to), ci, floatIndex(backend, b));
    } else {
      b = copyRows(scope, dy, co, from, to - from);
      const heap = heapF32(backend);
      if (rows) gatherTransposed(heap, rows.subarray(from, to), ci, floatIndex(backend, a));
      else transposeRows(heap, floatIndex(backend, x) + from * ci, to - from, ci, floatIndex(backend, a));
    }
    products.push(scope.matMul2d(a, b));
    scope.release(a);
    scope.release(b);
  }
  const product = sumProducts(scope, products);
  return scope.reshape(transposeDy ? scope.transpose(product, [1, 0]) : product, [1, 1, ci, co]);
}

/** Any filter size, stride and padding: the tap-major matrix A per chunk of images, times dY. */
function tapsFilterGrad(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, g: ConvGeometry) {
  const backend = asWasmBackend(scope.backend);
  const { batch, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co } = g;
  const taps = g.filterHeight * g.filterWidth;
  const planeSize = inHeight * inWidth;
  const pixelsPerImage = outHeight * outWidth;
  const channelsFirst = scope.alloc([ci, batch, inHeight, inWidth]);
  transposeRows(heapF32(backend), floatIndex(backend, x), batch * planeSize, ci, floatIndex(backend, channelsFirst));
  const products: tf.TensorInfo[] = [];
  for (const [first, count] of imageChunks(batch, pixelsPerImage)) {
    const chunkPixels = count * pixelsPerImage;
    const a = scope.alloc([taps * ci, chunkPixels]);
    const b = copyRows(scope, dy, co, first * pixelsPerImage, chunkPixels);
    const heap = heapF32(backend);
    const geometry = {
      planes: count,
      inHeight,
      inWidth,
      outHeight,
      outWidth,
      strideHeight: g.strideHeight,
      strideWidth: g.strideWidth,
    };
    const src = floatIndex(backend, channelsFirst);
    const dst = floatIndex(backend, a);
    // A chunk of the whole batch reads every channel's planes as one run (channel-major), and writes one tap's
    // rows as one run too: one call per tap instead of one per tap and channel.
    const whole = count === batch;
    for (let kh = 0; kh < g.filterHeight; kh++) {
      for (let kw = 0; kw < g.filterWidth; kw++) {
        const tap = kh * g.filterWidth + kw;
        if (whole) {
          gatherTap(
            heap,
            src,
            dst + tap * ci * chunkPixels,
            { ...geometry, planes: ci * count },
            kh - g.padTop,
            kw - g.padLeft,
          );
          continue;
        }
        for (let c = 0; c < ci; c++) {
          const planes = src + (c * batch + first) * planeSize;
          gatherTap(heap, planes, dst + (tap * ci + c) * chunkPixels, geometry, kh - g.padTop, kw - g.padLeft);
        }
      }
    }
    products.push(scope.matMul2d(a, b));
    scope.release(a);
    scope.release(b);
  }
  scope.release(channelsFirst);
  return scope.reshape(sumProducts(scope, products), [g.filterHeight, g.filterWidth, ci, co]);
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
