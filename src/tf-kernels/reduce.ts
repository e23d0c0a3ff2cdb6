// Sum and Mean over a contiguous block of non-trailing axes, e.g. [0,1,2] of NHWC (batch norm statistics and
// their gradients). wasm's kernels first transpose the reduced axes to the end with a scalar index loop over the
// whole tensor; accumulating whole rows into a per-channel vector reads the input once, in order.
import { tf } from '../tf.js';
import { asWasmBackend, floatIndex, heapF32 } from './wasm-heap.js';

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

function makeReduceKernel(mean: boolean, fallback: tf.KernelFunc | undefined): tf.KernelFunc {
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
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(outShape, 'float32');
    const heap = heapF32(backend);
    const src = floatIndex(backend, x);
    const dst = floatIndex(backend, out);
    // Float64 accumulators, like the cpu backend's JS-number sums.
    const acc = new Float64Array(inner);
    const scale = mean ? 1 / reduced : 1;
    for (let o = 0; o < outer; o++) {
      acc.fill(0);
      let s = src + o * reduced * inner;
      for (let r = 0; r < reduced; r++) {
        for (let c = 0; c < inner; c++) acc[c] += heap[s++];
      }
      const d = dst + o * inner;
      for (let c = 0; c < inner; c++) heap[d + c] = acc[c] * scale;
    }
    return out;
  };
}

export const makeSumKernel = (fallback: tf.KernelFunc | undefined) => makeReduceKernel(false, fallback);
export const makeMeanKernel = (fallback: tf.KernelFunc | undefined) => makeReduceKernel(true, fallback);
