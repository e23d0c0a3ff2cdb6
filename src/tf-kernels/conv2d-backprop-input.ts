// Conv2DBackpropInput (the input gradient of conv2d, i.e. a transposed convolution) on wasm's XNNPACK convolution.
//
// The wasm backend's own kernel is a naive C++ loop. Here dX is split by output phase (sub-pixel
// decomposition): the rows i = a + sh*u of dX (one phase a per row offset, likewise for columns) only see the
// filter taps kh = kh0 + sh*t with kh0 = (a + pt) mod sh, and are a stride-1 convolution of dY with those taps
// flipped and with in/out channels swapped. Stride 1 is the single phase (a full correlation with the flipped
// filter); for stride s each of the s*s phases is computed densely and copied to its pixels of dX. Every
// multiply is a useful one (no zero insertion), and each phase runs on XNNPACK.
import { tf } from '../tf.js';
import { convGeometry, type ConvAttrs, type ConvGeometry } from './conv-geometry.js';
import { KernelScope, withKernelScope } from './kernel-scope.js';
import { transposeRows } from './layout.js';
import { asWasmBackend, floatIndex, heapF32 } from './wasm-heap.js';

type Shape4 = [number, number, number, number];

/** The taps of one filter axis that reach the phase at offset `phase`, and where its convolution starts. */
interface PhaseTaps {
  /** First tap, then every stride-th. */
  first: number;
  count: number;
  /** Zero rows before dY (negative: rows of dY to drop) for the stride-1 convolution of this phase. */
  padBefore: number;
}

function phaseTaps(phase: number, pad: number, stride: number, filterSize: number): PhaseTaps {
  const first = (phase + pad) % stride;
  const count = first < filterSize ? Math.ceil((filterSize - first) / stride) : 0;
  // dX[phase + s*u] = sum_t dY[u + floor((phase+pad)/s) - t] * W[first + s*t]
  const offset = Math.floor((phase + pad) / stride);
  return { first, count, padBefore: count - 1 - offset };
}

/**
 * The filter of one phase: taps first + s*t of each axis, in reverse order, with in/out channels swapped:
 * out[t', u', co, ci] = W[r.first + sh*(r.count-1-t'), c.first + sw*(c.count-1-u'), ci, co].
 * Built by hand: wasm's StridedSlice took longer on these small filters than the phase's convolution.
 */
function phaseFilter(scope: KernelScope, filter: tf.TensorInfo, g: ConvGeometry, r: PhaseTaps, c: PhaseTaps) {
  const backend = asWasmBackend(scope.backend);
  const { inChannels: ci, outChannels: co } = g;
  const out = scope.alloc([r.count, c.count, co, ci]);
  const heap = heapF32(backend);
  const src = floatIndex(backend, filter);
  let dst = floatIndex(backend, out);
  for (let t = 0; t < r.count; t++) {
    const kh = r.first + g.strideHeight * (r.count - 1 - t);
    for (let u = 0; u < c.count; u++) {
      const kw = c.first + g.strideWidth * (c.count - 1 - u);
      transposeRows(heap, src + (kh * g.filterWidth + kw) * ci * co, ci, co, dst);
      dst += ci * co;
    }
  }
  return out;
}

/** Pads (positive) or crops (negative) the rows and columns of an NHWC tensor. */
function padOrCrop(scope: KernelScope, x: tf.TensorInfo, top: number, bottom: number, left: number, right: number) {
  let out = x;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [n, h, w, c] = out.shape;
    const cropTop = Math.max(0, -top);
    const cropLeft = Math.max(0, -left);
    out = scope.run(
      'Slice',
      { x: out },
      {
        begin: [0, cropTop, cropLeft, 0],
        size: [n, h - cropTop - Math.max(0, -bottom), w - cropLeft - Math.max(0, -right), c],
      },
    );
  }
  return {
    x: out,
    top: Math.max(0, top),
    bottom: Math.max(0, bottom),
    left: Math.max(0, left),
    right: Math.max(0, right),
  };
}

/** dX at rows rowPhase + sh*u and columns colPhase + sw*v, for u < rows and v < cols. */
function phaseGrad(
  scope: KernelScope,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  g: ConvGeometry,
  rowPhase: number,
  colPhase: number,
  rows: number,
  cols: number,
): tf.TensorInfo {
  const r = phaseTaps(rowPhase, g.padTop, g.strideHeight, g.filterHeight);
  const c = phaseTaps(colPhase, g.padLeft, g.strideWidth, g.filterWidth);
  if (r.count === 0 || c.count === 0) return scope.zeros([g.batch, rows, cols, g.inChannels]);

  const swapped = phaseFilter(scope, filter, g, r, c);

  // The stride-1 'valid' convolution yields outHeight + before + after - count + 1 rows: make that `rows`.
  const padded = padOrCrop(
    scope,
    dy,
    r.padBefore,
    rows + r.count - 1 - g.outHeight - r.padBefore,
    c.padBefore,
    cols + c.count - 1 - g.outWidth - c.padBefore,
  );
  return scope.run(
    'Conv2D',
    { x: padded.x, filter: swapped },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [padded.top, padded.bottom],
        [padded.left, padded.right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [1, 1],
    },
  );
}

/** Copies a phase [n, rows, cols, c] to dX pixels (rowPhase + sh*u, colPhase + sw*v). */
function scatterPhase(
  heap: Float32Array,
  src: number,
  dst: number,
  g: ConvGeometry,
  rowPhase: number,
  colPhase: number,
  rows: number,
  cols: number,
): void {
  const c = g.inChannels;
  let s = src;
  for (let n = 0; n < g.batch; n++) {
    for (let u = 0; u < rows; u++) {
      let d = dst + ((n * g.inHeight + rowPhase + u * g.strideHeight) * g.inWidth + colPhase) * c;
      const step = g.strideWidth * c;
      for (let v = 0; v < cols; v++, s += c, d += step) heap.copyWithin(d, s, s + c);
    }
  }
}

export function conv2DBackpropInput(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  inputShape: Shape4,
  attrs: ConvAttrs,
  scope: KernelScope,
): tf.TensorInfo {
  const g = convGeometry(inputShape, filter.shape as Shape4, attrs);
  const { strideHeight: sh, strideWidth: sw } = g;
  if (sh === 1 && sw === 1) return phaseGrad(scope, dy, filter, g, 0, 0, g.inHeight, g.inWidth);

  // Each phase is computed densely, then copied to its pixels of dX; phases no tap reaches stay zero.
  const backend = asWasmBackend(scope.backend);
  const dx = scope.alloc(inputShape);
  const phases: { a: number; b: number; rows: number; cols: number; grad: tf.TensorInfo }[] = [];
  let anyEmpty = false;
  for (let a = 0; a < Math.min(sh, g.inHeight); a++) {
    for (let b = 0; b < Math.min(sw, g.inWidth); b++) {
      const rows = Math.ceil((g.inHeight - a) / sh);
      const cols = Math.ceil((g.inWidth - b) / sw);
      if (
        phaseTaps(a, g.padTop, sh, g.filterHeight).count === 0 ||
        phaseTaps(b, g.padLeft, sw, g.filterWidth).count === 0
      ) {
        anyEmpty = true;
        continue;
      }
      phases.push({ a, b, rows, cols, grad: phaseGrad(scope, dy, filter, g, a, b, rows, cols) });
    }
  }
  const heap = heapF32(backend);
  const dst = floatIndex(backend, dx);
  if (anyEmpty) heap.fill(0, dst, dst + inputShape.reduce((p, q) => p * q, 1));
  for (const { a, b, rows, cols, grad } of phases) {
    scatterPhase(heap, floatIndex(backend, grad), dst, g, a, b, rows, cols);
    scope.release(grad);
  }
  return dx;
}

/** Whether the phase decomposition covers these attributes (wasm's Conv2D is NHWC only). */
function supportsBackpropInput(attrs: ConvAttrs): boolean {
  return attrs.dataFormat !== 'NCHW';
}

interface BackpropInputAttrs extends ConvAttrs {
  inputShape: Shape4;
}

/** Builds the kernel, keeping wasm's own kernel for NCHW (which its forward Conv2D rejects anyway). */
export function makeConv2DBackpropInputKernel(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const convAttrs = args.attrs as unknown as BackpropInputAttrs;
    if (!supportsBackpropInput(convAttrs)) {
      if (!fallback) throw new Error('Conv2DBackpropInput: unsupported attributes on wasm');
      return fallback(args);
    }
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    return withKernelScope(args.backend, 'wasm', (scope) =>
      conv2DBackpropInput(dy, filter, convAttrs.inputShape, convAttrs, scope),
    );
  };
}
