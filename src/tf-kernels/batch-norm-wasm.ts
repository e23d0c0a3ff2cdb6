// Training-mode batch norm's passes over an activation as WebAssembly SIMD functions of our own, on the wasm
// backend's heap: per-channel sums, the normalisation, and the gradient's dx, each one pass in NHWC (a pixel's
// channels are contiguous, so 4 channels are one vector and the per-channel values are vector loads).
//
// With tfjs ops on XNNPACK the forward pass was tf.moments (a mean, a broadcast subtraction, a square, a mean) and
// tf.batchNorm, and the gradient four kernels; broadcasts of a per-channel vector run 5-9x slower than same-shape
// operations at this network's 16-128 channels: on 2 idle cores these passes were a quarter of a laptop-preset
// step, 72 of 299 ms, and 37 ms with these functions (BENCHMARKS.md, issue 26). Sums are taken in blocks of
// pixels in float32 and the blocks added in float64 by the caller, so their rounding stays that of a sum of
// BLOCK_PIXELS values.
import { type Code, encodeModule, I32, op, V128 } from './wasm-binary.js';
import { heapMemory, isShared } from './wasm-heap.js';

/** Pixels summed in float32 before the caller adds the blocks in float64. */
export const BLOCK_PIXELS = 64;

/**
 * All addresses in bytes; `rowBytes` is 4 x channels, a multiple of 16; `pixels` (the product of every dimension
 * but the channels) at least 1. Per block of BLOCK_PIXELS pixels, `out` gets one row of per-channel sums:
 *   sum:     sum(a)
 *   squares: sum((a - mean)^2)
 *   dual:    sum(a), then a second row: sum(a * (b - mean))      (a = dy, b = x)
 * normalize: out = (a - mean) * scale + offset, element by element.
 * dx:        out = dy * scale + (x - mean) * slope + shift.
 */
export interface BatchNormFunctions {
  sum(a: number, b: number, mean: number, pixels: number, rowBytes: number, out: number): void;
  squares(a: number, b: number, mean: number, pixels: number, rowBytes: number, out: number): void;
  dual(a: number, b: number, mean: number, pixels: number, rowBytes: number, out: number): void;
  normalize(
    a: number,
    mean: number,
    scale: number,
    offset: number,
    pixels: number,
    rowBytes: number,
    out: number,
  ): void;
  dx(
    dy: number,
    x: number,
    mean: number,
    scale: number,
    slope: number,
    shift: number,
    pixels: number,
    rowBytes: number,
    out: number,
  ): void;
}

const get = op.localGet;
const set = op.localSet;
const i32 = op.i32Const;

type SumKind = 'sum' | 'squares' | 'dual';

/** The block sums: parameters (a, b, mean, pixels, rowBytes, out). */
function blockSums(kind: SumKind): Code {
  const [A, B, MEAN, PIXELS, ROW_BYTES, OUT] = [0, 1, 2, 3, 4, 5];
  const [BLOCK_START, OUT_ROW, REMAINING, N, C, PTR, I] = [6, 7, 8, 9, 10, 11, 12];
  const [ACC, ACC2, MEAN_V, VALUE] = [13, 14, 15, 16];
  const zero: Code = [...i32(0), ...op.i32x4Splat];
  const load = (base: number): Code => [...get(base), ...get(PTR), ...op.i32Add, ...op.v128Load(0)];
  const code: Code = [];
  code.push(...get(PIXELS), ...set(REMAINING), ...i32(0), ...set(BLOCK_START), ...get(OUT), ...set(OUT_ROW));
  code.push(...op.loop);
  // N = min(REMAINING, BLOCK_PIXELS)
  code.push(...get(REMAINING), ...i32(BLOCK_PIXELS), ...get(REMAINING), ...i32(BLOCK_PIXELS), ...op.i32LtS);
  code.push(...op.select, ...set(N), ...i32(0), ...set(C), ...op.loop);
  code.push(...zero, ...set(ACC));
  if (kind === 'dual') code.push(...zero, ...set(ACC2));
  if (kind !== 'sum') code.push(...get(MEAN), ...get(C), ...op.i32Add, ...op.v128Load(0), ...set(MEAN_V));
  code.push(...get(BLOCK_START), ...get(C), ...op.i32Add, ...set(PTR), ...get(N), ...set(I), ...op.loop);
  if (kind === 'sum') code.push(...get(ACC), ...load(A), ...op.f32x4Add, ...set(ACC));
  if (kind === 'squares') {
    code.push(...load(A), ...get(MEAN_V), ...op.f32x4Sub, ...op.localTee(VALUE));
    code.push(...get(VALUE), ...op.f32x4Mul, ...get(ACC), ...op.f32x4Add, ...set(ACC));
  }
  if (kind === 'dual') {
    code.push(...load(A), ...op.localTee(VALUE), ...get(ACC), ...op.f32x4Add, ...set(ACC));
    code.push(...load(B), ...get(MEAN_V), ...op.f32x4Sub, ...get(VALUE), ...op.f32x4Mul);
    code.push(...get(ACC2), ...op.f32x4Add, ...set(ACC2));
  }
  code.push(...get(PTR), ...get(ROW_BYTES), ...op.i32Add, ...set(PTR));
  code.push(...get(I), ...i32(1), ...op.i32Sub, ...op.localTee(I), ...op.brIf(0), ...op.end);
  code.push(...get(OUT_ROW), ...get(C), ...op.i32Add, ...get(ACC), ...op.v128Store(0));
  if (kind === 'dual') {
    code.push(...get(OUT_ROW), ...get(ROW_BYTES), ...op.i32Add, ...get(C), ...op.i32Add, ...get(ACC2));
    code.push(...op.v128Store(0));
  }
  code.push(...get(C), ...i32(16), ...op.i32Add, ...op.localTee(C), ...get(ROW_BYTES), ...op.i32LtS);
  code.push(...op.brIf(0), ...op.end);
  // The next block: its pixels, and the next row (two for dual) of sums.
  code.push(...get(BLOCK_START), ...get(N), ...get(ROW_BYTES), ...op.i32Mul, ...op.i32Add, ...set(BLOCK_START));
  code.push(...get(OUT_ROW), ...get(ROW_BYTES), ...(kind === 'dual' ? [...i32(2), ...op.i32Mul] : []));
  code.push(...op.i32Add, ...set(OUT_ROW));
  code.push(...get(REMAINING), ...get(N), ...op.i32Sub, ...op.localTee(REMAINING), ...i32(0), ...op.i32GtS);
  code.push(...op.brIf(0), ...op.end);
  return code;
}

/**
 * for each pixel, for each vector of 4 channels: out = value, where `value` computes one vector from the
 * element's byte offset in local ADDR (pixel start + channel) and the channel's in local C.
 */
function elementwise(params: number, pixelsParam: number, rowBytesParam: number, outParam: number, value: Code): Code {
  const [PTR, I, C] = [params, params + 1, params + 2];
  const code: Code = [];
  code.push(...i32(0), ...set(PTR), ...get(pixelsParam), ...set(I), ...op.loop);
  code.push(...i32(0), ...set(C), ...op.loop);
  code.push(...get(outParam), ...get(PTR), ...op.i32Add, ...get(C), ...op.i32Add, ...value, ...op.v128Store(0));
  code.push(...get(C), ...i32(16), ...op.i32Add, ...op.localTee(C), ...get(rowBytesParam), ...op.i32LtS);
  code.push(...op.brIf(0), ...op.end);
  code.push(...get(PTR), ...get(rowBytesParam), ...op.i32Add, ...set(PTR));
  code.push(...get(I), ...i32(1), ...op.i32Sub, ...op.localTee(I), ...op.brIf(0), ...op.end);
  return code;
}

/** out = (a - mean) * scale + offset: parameters (a, mean, scale, offset, pixels, rowBytes, out). */
function normalizeBody(): Code {
  const [A, MEAN, SCALE, OFFSET, PIXELS, ROW_BYTES, OUT] = [0, 1, 2, 3, 4, 5, 6];
  const [PTR, C] = [7, 9];
  const element = (base: number): Code => [...get(base), ...get(PTR), ...op.i32Add, ...get(C), ...op.i32Add];
  const channel = (base: number): Code => [...get(base), ...get(C), ...op.i32Add, ...op.v128Load(0)];
  const value: Code = [
    ...element(A),
    ...op.v128Load(0),
    ...channel(MEAN),
    ...op.f32x4Sub,
    ...channel(SCALE),
    ...op.f32x4Mul,
    ...channel(OFFSET),
    ...op.f32x4Add,
  ];
  return elementwise(7, PIXELS, ROW_BYTES, OUT, value);
}

/** out = dy * scale + (x - mean) * slope + shift: parameters (dy, x, mean, scale, slope, shift, pixels, rowBytes, out). */
function dxBody(): Code {
  const [DY, X, MEAN, SCALE, SLOPE, SHIFT, PIXELS, ROW_BYTES, OUT] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [PTR, C] = [9, 11];
  const element = (base: number): Code => [...get(base), ...get(PTR), ...op.i32Add, ...get(C), ...op.i32Add];
  const channel = (base: number): Code => [...get(base), ...get(C), ...op.i32Add, ...op.v128Load(0)];
  const value: Code = [
    ...element(DY),
    ...op.v128Load(0),
    ...channel(SCALE),
    ...op.f32x4Mul,
    ...element(X),
    ...op.v128Load(0),
    ...channel(MEAN),
    ...op.f32x4Sub,
    ...channel(SLOPE),
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...channel(SHIFT),
    ...op.f32x4Add,
  ];
  return elementwise(9, PIXELS, ROW_BYTES, OUT, value);
}

/** The module's bytes, for a shared memory (the threaded build's) or not. */
export function batchNormModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const sums = (kind: SumKind) => ({
    name: kind,
    params: new Array<number>(6).fill(I32),
    locals: [
      [7, I32],
      [4, V128],
    ] as [number, number][],
    body: blockSums(kind),
  });
  return encodeModule(
    [
      sums('sum'),
      sums('squares'),
      sums('dual'),
      { name: 'normalize', params: new Array<number>(7).fill(I32), locals: [[3, I32]], body: normalizeBody() },
      { name: 'dx', params: new Array<number>(9).fill(I32), locals: [[3, I32]], body: dxBody() },
    ],
    sharedMemory,
  );
}

const instances = new WeakMap<WebAssembly.Memory, BatchNormFunctions>();

/** The functions on `memory` (compiled once per memory); throws where WebAssembly has no SIMD. */
export function batchNormFunctionsFor(memory: WebAssembly.Memory, shared: boolean): BatchNormFunctions {
  let functions = instances.get(memory);
  if (!functions) {
    const bytes = batchNormModule(shared);
    if (!WebAssembly.validate(bytes)) throw new Error('batch norm on wasm needs WebAssembly SIMD');
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    functions = instance.exports as unknown as BatchNormFunctions;
    instances.set(memory, functions);
  }
  return functions;
}

/** The SIMD functions on this backend's heap when `channels` fit them (whole vectors), else undefined. */
export function simdBatchNorm(backend: unknown, channels: number): BatchNormFunctions | undefined {
  if (channels % 4 !== 0) return undefined;
  const memory = heapMemory(backend);
  return memory ? batchNormFunctionsFor(memory, isShared(memory)) : undefined;
}

/**
 * Per-channel totals of the sums `sum`/`squares`/`dual` wrote for each block of pixels: rows of `channels`
 * floats, `rowsPerBlock` of them a block (2 for dual), totals of row `row` of each block, added in float64.
 */
export function blockTotals(
  heap: Float32Array,
  start: number,
  blocks: number,
  channels: number,
  rowsPerBlock: number,
  row: number,
): Float64Array {
  const totals = new Float64Array(channels);
  for (let block = 0; block < blocks; block++) {
    const at = start + (block * rowsPerBlock + row) * channels;
    for (let c = 0; c < channels; c++) totals[c] += heap[at + c];
  }
  return totals;
}
