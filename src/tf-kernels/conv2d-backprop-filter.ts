// Conv2DBackpropFilter (the filter gradient of conv2d) for the wasm backend, which ships none.
//
// dW[kh,kw,ci,co] = sum_{n,y,x} X[n, y*sh+kh-pt, x*sw+kw-pl, ci] * dY[n,y,x,co] is ONE matrix product:
// the transposed im2col matrix [kh*kw*ci, n*y*x] times dY as [n*y*x, co]. Its rows come in the order of the
// filter's own layout, so the product needs no transpose afterwards. The im2col rows are strided slices of
// X transposed to [ci, n, h, w]; the product runs on XNNPACK's GEMM (wasm's BatchMatMul without transposes).
import { tf } from '../tf.js';
import { convGeometry, type ConvAttrs, type ConvGeometry } from './conv-geometry.js';
import { KernelScope, withKernelScope } from './kernel-scope.js';

type Shape4 = [number, number, number, number];

function stridedSlice(scope: KernelScope, x: tf.TensorInfo, begin: number[], end: number[], strides: number[]) {
  return scope.run(
    'StridedSlice',
    { x },
    { begin, end, strides, beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0 },
  );
}

/** 1x1 filter without padding: dW = Xs^T dY, with Xs the input at the strided positions. */
function pointwiseFilterGrad(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, g: ConvGeometry) {
  const { batch, outHeight, outWidth, inChannels, outChannels, strideHeight, strideWidth } = g;
  let sampled = x;
  if (strideHeight > 1 || strideWidth > 1 || outHeight !== g.inHeight || outWidth !== g.inWidth) {
    sampled = stridedSlice(
      scope,
      x,
      [0, 0, 0, 0],
      [batch, (outHeight - 1) * strideHeight + 1, (outWidth - 1) * strideWidth + 1, inChannels],
      [1, strideHeight, strideWidth, 1],
    );
  }
  const pixels = batch * outHeight * outWidth;
  // An explicit transpose is much faster than BatchMatMul with transposeA, which wasm runs with naive loops.
  const xT = scope.transpose(scope.reshape(sampled, [pixels, inChannels]), [1, 0]);
  const dW = scope.matMul2d(xT, scope.reshape(dy, [pixels, outChannels]));
  return scope.reshape(dW, [1, 1, inChannels, outChannels]);
}

/** Any filter size and stride: transposed im2col, then one product. */
function im2colFilterGrad(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, g: ConvGeometry) {
  const { batch, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = g;
  const { filterHeight, filterWidth, strideHeight, strideWidth, padTop, padLeft } = g;
  // Rows kh + y*sh of the padded input are read, for kh < filterHeight and y < outHeight.
  const rowsRead = filterHeight + (outHeight - 1) * strideHeight;
  const colsRead = filterWidth + (outWidth - 1) * strideWidth;
  const padBottom = Math.max(0, rowsRead - padTop - inHeight);
  const padRight = Math.max(0, colsRead - padLeft - inWidth);
  let padded = x;
  if (padTop + padBottom + padLeft + padRight > 0) {
    padded = scope.run(
      'PadV2',
      { x },
      { paddings: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]], constantValue: 0 },
    );
  }
  const channelsFirst = scope.transpose(padded, [3, 0, 1, 2]);
  const rows: tf.TensorInfo[] = [];
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      rows.push(
        stridedSlice(
          scope,
          channelsFirst,
          [0, 0, kh, kw],
          [inChannels, batch, kh + (outHeight - 1) * strideHeight + 1, kw + (outWidth - 1) * strideWidth + 1],
          [1, 1, strideHeight, strideWidth],
        ),
      );
    }
  }
  const columns = rows.length === 1 ? rows[0] : scope.run('Concat', rows, { axis: 0 });
  const pixels = batch * outHeight * outWidth;
  const taps = filterHeight * filterWidth * inChannels;
  const dW = scope.matMul2d(scope.reshape(columns, [taps, pixels]), scope.reshape(dy, [pixels, outChannels]));
  return scope.reshape(dW, [filterHeight, filterWidth, inChannels, outChannels]);
}

export function conv2DBackpropFilter(x: tf.TensorInfo, dy: tf.TensorInfo, filterShape: Shape4, attrs: ConvAttrs, scope: KernelScope) {
  const g = convGeometry(x.shape as Shape4, filterShape, attrs);
  if (g.filterHeight === 1 && g.filterWidth === 1 && g.padTop === 0 && g.padLeft === 0) {
    return pointwiseFilterGrad(scope, x, dy, g);
  }
  return im2colFilterGrad(scope, x, dy, g);
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
