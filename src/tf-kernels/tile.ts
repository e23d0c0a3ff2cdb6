// Tile for the wasm backend by block copies. The wasm kernel computes every output index with divisions; batch
// norm's gradient tiles a [1,1,1,C] vector to the whole activation (tfjs-core's FusedBatchNorm gradient), which
// made Tile a quarter of a ResNet training step. Copying the input once and then doubling the filled region
// with memmove (copyWithin) costs about one pass over the output.
import { tf } from '../tf.js';
import { asWasmBackend, byteOffset, repeatInPlace } from './wasm-heap.js';

const BYTES: Partial<Record<tf.DataType, number>> = { float32: 4, int32: 4, bool: 1 };

/**
 * Tiles the sub-tensor of `shape` starting at `axis` (input at byte `src`) into the output at byte `dst`.
 * `inStrides`/`outStrides` are in bytes.
 */
function tileAxis(
  heap: Uint8Array,
  shape: number[],
  reps: number[],
  inStrides: number[],
  outStrides: number[],
  axis: number,
  src: number,
  dst: number,
): void {
  const last = axis === shape.length - 1;
  if (last || inStrides[axis] === outStrides[axis]) {
    // Either the innermost axis, or every inner axis is untiled: the input block is contiguous in the output.
    const blockBytes = shape[axis] * inStrides[axis];
    heap.copyWithin(dst, src, src + blockBytes);
    repeatInPlace(heap, dst, blockBytes, reps[axis]);
    return;
  }
  for (let i = 0; i < shape[axis]; i++) {
    tileAxis(heap, shape, reps, inStrides, outStrides, axis + 1, src + i * inStrides[axis], dst + i * outStrides[axis]);
  }
  repeatInPlace(heap, dst, shape[axis] * outStrides[axis], reps[axis]);
}

function byteStrides(shape: number[], elementBytes: number): number[] {
  const strides = new Array<number>(shape.length);
  let stride = elementBytes;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

/** Builds the kernel; `fallback` (wasm's own Tile) handles strings. */
export function makeTileKernel(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const reps = (args.attrs as { reps: number[] }).reps;
    const elementBytes = BYTES[x.dtype];
    if (elementBytes === undefined || x.shape.length === 0) {
      if (!fallback) throw new Error(`Tile: unsupported dtype ${x.dtype} on wasm`);
      return fallback(args);
    }
    const backend = asWasmBackend(args.backend);
    const outShape = x.shape.map((size, i) => size * reps[i]);
    const out = backend.makeOutput(outShape, x.dtype);
    if (outShape.some((size) => size === 0)) return out;
    // Read the heap only now: makeOutput may have grown (and so replaced) it.
    const heap = backend.wasm.HEAPU8;
    tileAxis(
      heap,
      x.shape,
      reps,
      byteStrides(x.shape, elementBytes),
      byteStrides(outShape, elementBytes),
      0,
      byteOffset(backend, x),
      byteOffset(backend, out),
    );
    return out;
  };
}
