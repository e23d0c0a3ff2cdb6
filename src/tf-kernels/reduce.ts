// Sum and Mean over a contiguous block of non-trailing axes, e.g. [0,1,2] of NHWC (batch-norm statistics and
// their gradients), as XNNPACK average pooling. wasm's own kernels first transpose the reduced axes to the end
// with a scalar index loop (and a plain JS accumulation loop was no better): pooling the reduced block as a
// [reduced, 1] window is SIMD over the channels and about ten times faster.
import { tf } from '../tf.js';
import { KernelScope, withKernelScope } from './kernel-scope.js';
import { asWasmBackend, floatIndex, heapF32 } from './wasm-heap.js';

/** The longest run averaged in one pooling window; longer runs are pooled in two levels (float32 rounding). */
const MAX_WINDOW = 4096;

interface ReduceAttrs {
  axis: number | number[];
  keepDims: boolean;
}

/** [outer, reduced, inner] sizes when `axes` form one contiguous block that is not at the end; else undefined. */
export function blockReduction(shape: number[], axes: number[]): [number, number, number] | undefined {
  if (axes.length === 0) return undefined;
  const sorted = [...axes].sort((a, b) => a - b);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (last - first + 1 !== sorted.length || last === shape.length - 1) return undefined;
  const size = (from: number, to: number) => shape.slice(from, to).reduce((p, q) => p * q, 1);
  return [size(0, first), size(first, last + 1), size(last + 1, shape.length)];
}

/** The largest divisor of n that is at most limit. */
function largestDivisorAtMost(n: number, limit: number): number {
  for (let d = Math.min(n, limit); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

function averageRuns(scope: KernelScope, x: tf.TensorInfo, groups: number, run: number, inner: number) {
  return scope.run(
    'AvgPool',
    { x: scope.reshape(x, [groups, run, 1, inner]) },
    { filterSize: [run, 1], strides: [run, 1], pad: 'valid' },
  );
}

/** Mean of x viewed as [outer, reduced, inner] over its middle axis, as [outer, inner]. */
export function blockMean(scope: KernelScope, x: tf.TensorInfo, outer: number, reduced: number, inner: number) {
  let mean = x;
  let remaining = reduced;
  while (remaining > 1) {
    // Pool the innermost part of the reduced block first (it is contiguous in memory).
    const run = remaining <= MAX_WINDOW ? remaining : largestDivisorAtMost(remaining, MAX_WINDOW);
    const window = run > 1 ? run : remaining;
    remaining /= window;
    mean = averageRuns(scope, mean, outer * remaining, window, inner);
  }
  return scope.reshape(mean, [outer, inner]);
}

function makeReduceKernel(isMean: boolean, fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as ReduceAttrs;
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const block = x.dtype === 'float32' ? blockReduction(x.shape, axes) : undefined;
    if (!block || block[1] === 1) {
      if (!fallback) throw new Error('reduction not supported by the wasm training kernels');
      return fallback(args);
    }
    const [outer, reduced, inner] = block;
    const outShape = keepDims
      ? x.shape.map((size, i) => (axes.includes(i) ? 1 : size))
      : x.shape.filter((_, i) => !axes.includes(i));
    return withKernelScope(args.backend, 'wasm', (scope) => {
      const mean = blockMean(scope, x, outer, reduced, inner);
      if (!isMean) {
        const backend = asWasmBackend(scope.backend);
        const heap = heapF32(backend);
        const start = floatIndex(backend, mean);
        for (let i = start; i < start + outer * inner; i++) heap[i] *= reduced;
      }
      return scope.reshape(mean, outShape);
    });
  };
}

export const makeSumKernel = (fallback: tf.KernelFunc | undefined) => makeReduceKernel(false, fallback);
export const makeMeanKernel = (fallback: tf.KernelFunc | undefined) => makeReduceKernel(true, fallback);
