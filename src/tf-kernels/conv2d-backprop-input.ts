// Conv2DBackpropInput (the input gradient of conv2d, i.e. a transposed convolution) on wasm's XNNPACK convolution.
//
// The wasm backend's own kernel is a naive C++ loop. Here dX is split by output phase (sub-pixel
// decomposition): the rows i = a + sh*u of dX (one phase a per row offset, likewise for columns) only see the
// filter taps kh = kh0 + sh*t with kh0 = (a + pt) mod sh, and are a stride-1 convolution of dY with those taps
// flipped and with in/out channels swapped. Stride 1 is the single phase (a full correlation with the flipped
// filter); for stride s the s*s phases are concatenated on channels and interleaved by DepthToSpace. Every
// multiply is a useful one (no zero insertion), and each phase runs on XNNPACK.
import { tf } from '../tf.js';
import { convGeometry, type ConvAttrs, type ConvGeometry } from './conv-geometry.js';
import { KernelScope, withKernelScope } from './kernel-scope.js';

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
  return { x: out, top: Math.max(0, top), bottom: Math.max(0, bottom), left: Math.max(0, left), right: Math.max(0, right) };
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

  let taps = filter;
  if (g.strideHeight > 1 || g.strideWidth > 1) {
    taps = scope.run(
      'StridedSlice',
      { x: filter },
      {
        begin: [r.first, c.first, 0, 0],
        end: [r.first + (r.count - 1) * g.strideHeight + 1, c.first + (c.count - 1) * g.strideWidth + 1, g.inChannels, g.outChannels],
        strides: [g.strideHeight, g.strideWidth, 1, 1],
        beginMask: 0,
        endMask: 0,
        ellipsisMask: 0,
        newAxisMask: 0,
        shrinkAxisMask: 0,
      },
    );
  }
  if (r.count > 1 || c.count > 1) taps = scope.run('Reverse', { x: taps }, { dims: [0, 1] });
  const swapped = scope.transpose(taps, [0, 1, 3, 2]);

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
      pad: [[0, 0], [padded.top, padded.bottom], [padded.left, padded.right], [0, 0]],
      dataFormat: 'NHWC',
      dilations: [1, 1],
    },
  );
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

  // Every phase gets ceil(in/stride) rows and columns, so that they interleave; extra ones are cropped.
  const rows = Math.ceil(g.inHeight / sh);
  const cols = Math.ceil(g.inWidth / sw);
  const phases: tf.TensorInfo[] = [];
  for (let a = 0; a < sh; a++) {
    for (let b = 0; b < sw; b++) phases.push(phaseGrad(scope, dy, filter, g, a, b, rows, cols));
  }
  // DepthToSpace puts channel block a*s + b at row offset a, column offset b.
  const stacked = scope.run('Concat', phases, { axis: 3 });
  const interleaved = scope.run('DepthToSpace', { x: stacked }, { blockSize: sh, dataFormat: 'NHWC' });
  if (rows * sh === g.inHeight && cols * sw === g.inWidth) return interleaved;
  return scope.run('Slice', { x: interleaved }, { begin: [0, 0, 0, 0], size: inputShape });
}

/** Whether the phase decomposition covers these attributes (DepthToSpace needs equal strides). */
export function supportsBackpropInput(attrs: ConvAttrs): boolean {
  if (attrs.dataFormat === 'NCHW') return false;
  const [sh, sw] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
  return sh === sw;
}

interface BackpropInputAttrs extends ConvAttrs {
  inputShape: Shape4;
}

/** Builds the kernel, keeping wasm's own kernel for what the decomposition does not cover. */
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
