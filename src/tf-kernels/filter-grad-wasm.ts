// The inner loop of the filter gradient as a WebAssembly SIMD function of our own, run on the wasm backend's heap.
//
// For one filter tap it adds to sums[i][o] the products x[p + shift][i] * dy[p][o] over a rectangle of output
// pixels p, reading both tensors where they lie, in NHWC: a pixel's input channels and its output channels are
// each contiguous, so a tile of 4 input x 8 output channels is 4 broadcast loads, 2 vector loads and 8
// multiply-adds a pixel, with the tile's 8 vector sums kept in locals (registers) over the whole rectangle.
// It replaced a re-layout to channels-first and per-tap copies in JavaScript plus an XNNPACK GEMM of an awkward
// shape (tiny M and N, long K): 3.6x faster on the laptop ResNet's filter gradients, 1.7x on the tutorial's
// (scripts/filter-grad-bench.ts, one thread). Where WebAssembly has relaxed SIMD (Node 22; Node 20 behind the flag
// conv-wasm.ts turns on) the products are added by its fused multiply-add.
import { hasRelaxedSimd } from './conv-wasm.js';
import { type Code, encodeModule, I32, op, V128 } from './wasm-binary.js';
import { heapMemory, isShared } from './wasm-heap.js';

/**
 * accumulateTap(x, dy, sums, rows, cols, xRowStride, xColStride, dyRowStride, dyColStride, inChannels,
 * outChannels, sumsRowStride), addresses and strides in bytes: for r < rows, c < cols, i < inChannels,
 * o < outChannels,
 *   sums[i * sumsRowStride + 4o] += x[r * xRowStride + c * xColStride + 4i] * dy[r * dyRowStride + c * dyColStride + 4o]
 * (as float32). rows and cols at least 1; outChannels a multiple of 4 (it reads whole vectors).
 */
export type AccumulateTap = (
  x: number,
  dy: number,
  sums: number,
  rows: number,
  cols: number,
  xRowStride: number,
  xColStride: number,
  dyRowStride: number,
  dyColStride: number,
  inChannels: number,
  outChannels: number,
  sumsRowStride: number,
) => void;

// Local indices: the parameters in AccumulateTap's order, then i32 locals, then v128 locals.
const X = 0;
const DY = 1;
const SUMS = 2;
const ROWS = 3;
const COLS = 4;
const X_ROW_STRIDE = 5;
const X_COL_STRIDE = 6;
const DY_ROW_STRIDE = 7;
const DY_COL_STRIDE = 8;
const IN_CHANNELS = 9;
const OUT_CHANNELS = 10;
const SUMS_ROW_STRIDE = 11;
const PARAMS = 12;
/** First input channel and output channel of the tile, and its height (1-4) and width (4 or 8). */
const I0 = 12;
const O0 = 13;
const TILE_IN = 14;
const TILE_OUT = 15;
const ROW = 16;
const COL = 17;
const X_ROW = 18;
const DY_ROW = 19;
const X_PIXEL = 20;
const DY_PIXEL = 21;
const SUMS_TILE = 22;
const I32_LOCALS = 11;
const DY0 = 23;
const DY1 = 24;
const X_SPLAT = 25;
/** The tile's sums: SUM + 2 * input lane + output vector. */
const SUM = 26;
const V128_LOCALS = 3 + 8;

/** Input channels and output channels of the largest tile: 8 sums and 4 operands fit x64's 16 vector registers. */
const TILE_INPUTS = 4;
const TILE_OUTPUTS = 8;

const get = op.localGet;
const set = op.localSet;

/** Byte address of row `lane` of the tile's sums. */
const sumsRow = (lane: number): Code => [
  ...get(SUMS_TILE),
  ...get(SUMS_ROW_STRIDE),
  ...op.i32Const(lane),
  ...op.i32Mul,
  ...op.i32Add,
];

/** local += step */
const advance = (local: number, step: number): Code => [...get(local), ...get(step), ...op.i32Add, ...set(local)];

/**
 * The loops over the rectangle for a tile of `inputs` x `outputs` channels (a multiple of 4); with `fma`, the
 * products are added by relaxed SIMD's multiply-add.
 */
function tileLoops(inputs: number, outputs: number, fma: boolean): Code {
  const vectors = outputs / 4;
  const sum = (lane: number, vector: number) => SUM + 2 * lane + vector;
  const code: Code = [];
  for (let lane = 0; lane < inputs; lane++) {
    for (let v = 0; v < vectors; v++) code.push(...sumsRow(lane), ...op.v128Load(16 * v), ...set(sum(lane, v)));
  }
  code.push(...get(X), ...get(I0), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...set(X_ROW));
  code.push(...get(DY), ...get(O0), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...set(DY_ROW));
  code.push(...get(ROWS), ...set(ROW), ...op.loop);
  code.push(...get(X_ROW), ...set(X_PIXEL), ...get(DY_ROW), ...set(DY_PIXEL), ...get(COLS), ...set(COL), ...op.loop);
  // One pixel: the outer product of its input lanes and output vectors, added to the sums.
  code.push(...get(DY_PIXEL), ...op.v128Load(0), ...set(DY0));
  if (vectors > 1) code.push(...get(DY_PIXEL), ...op.v128Load(16), ...set(DY1));
  for (let lane = 0; lane < inputs; lane++) {
    code.push(...get(X_PIXEL), ...op.v128Load32Splat(4 * lane), ...set(X_SPLAT));
    for (let v = 0; v < vectors; v++) {
      const product = [...get(X_SPLAT), ...get(v ? DY1 : DY0)];
      if (fma) code.push(...product, ...get(sum(lane, v)), ...op.f32x4RelaxedMadd, ...set(sum(lane, v)));
      else code.push(...get(sum(lane, v)), ...product, ...op.f32x4Mul, ...op.f32x4Add, ...set(sum(lane, v)));
    }
  }
  code.push(...advance(X_PIXEL, X_COL_STRIDE), ...advance(DY_PIXEL, DY_COL_STRIDE));
  code.push(...get(COL), ...op.i32Const(1), ...op.i32Sub, ...op.localTee(COL), ...op.brIf(0), ...op.end);
  code.push(...advance(X_ROW, X_ROW_STRIDE), ...advance(DY_ROW, DY_ROW_STRIDE));
  code.push(...get(ROW), ...op.i32Const(1), ...op.i32Sub, ...op.localTee(ROW), ...op.brIf(0), ...op.end);
  for (let lane = 0; lane < inputs; lane++) {
    for (let v = 0; v < vectors; v++) code.push(...sumsRow(lane), ...get(sum(lane, v)), ...op.v128Store(16 * v));
  }
  return code;
}

/** if TILE_IN == 4 … else if 3 … : one specialised loop per tile size, with its width chosen inside. */
function tileDispatch(fma: boolean): Code {
  const byWidth = (inputs: number): Code => [
    ...get(TILE_OUT),
    ...op.i32Const(TILE_OUTPUTS),
    ...op.i32Ne,
    ...op.if,
    ...tileLoops(inputs, 4, fma),
    ...op.else,
    ...tileLoops(inputs, TILE_OUTPUTS, fma),
    ...op.end,
  ];
  const code: Code = [];
  for (let inputs = TILE_INPUTS; inputs > 1; inputs--)
    code.push(...get(TILE_IN), ...op.i32Const(inputs), ...op.i32Ne, ...op.if);
  code.push(...byWidth(1));
  for (let inputs = 2; inputs <= TILE_INPUTS; inputs++) code.push(...op.else, ...byWidth(inputs), ...op.end);
  return code;
}

/** for (i0 = 0; i0 < inChannels; i0 += 4) for (o0 = 0; o0 < outChannels; o0 += tile width) the tile's loops. */
function accumulateTapBody(fma: boolean): Code {
  const code: Code = [];
  code.push(...op.i32Const(0), ...set(I0), ...op.loop);
  // TILE_IN = min(4, inChannels - i0)
  code.push(...get(IN_CHANNELS), ...get(I0), ...op.i32Sub, ...set(TILE_IN));
  code.push(...op.i32Const(TILE_INPUTS), ...get(TILE_IN), ...get(TILE_IN), ...op.i32Const(TILE_INPUTS), ...op.i32GtS);
  code.push(...op.select, ...set(TILE_IN));
  code.push(...op.i32Const(0), ...set(O0), ...op.loop);
  // TILE_OUT = outChannels - o0 >= 8 ? 8 : 4
  code.push(...op.i32Const(TILE_OUTPUTS), ...op.i32Const(4), ...get(OUT_CHANNELS), ...get(O0), ...op.i32Sub);
  code.push(...op.i32Const(TILE_OUTPUTS), ...op.i32GeS, ...op.select, ...set(TILE_OUT));
  // SUMS_TILE = sums + i0 * sumsRowStride + 4 * o0
  code.push(...get(SUMS), ...get(I0), ...get(SUMS_ROW_STRIDE), ...op.i32Mul, ...op.i32Add);
  code.push(...get(O0), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...set(SUMS_TILE));
  code.push(...tileDispatch(fma));
  code.push(...get(O0), ...get(TILE_OUT), ...op.i32Add, ...op.localTee(O0), ...get(OUT_CHANNELS), ...op.i32LtS);
  code.push(...op.brIf(0), ...op.end);
  code.push(...get(I0), ...op.i32Const(TILE_INPUTS), ...op.i32Add, ...op.localTee(I0), ...get(IN_CHANNELS));
  code.push(...op.i32LtS, ...op.brIf(0), ...op.end);
  return code;
}

/** The module's bytes, for a shared memory (the threaded build's) or not, with relaxed SIMD's multiply-add or not. */
export function filterGradModule(sharedMemory: boolean, fma: boolean): Uint8Array<ArrayBuffer> {
  const params = new Array<number>(PARAMS).fill(I32);
  const locals: [number, number][] = [
    [I32_LOCALS, I32],
    [V128_LOCALS, V128],
  ];
  return encodeModule([{ name: 'accumulateTap', params, locals, body: accumulateTapBody(fma) }], sharedMemory);
}

const instances = new WeakMap<WebAssembly.Memory, AccumulateTap>();

/**
 * accumulateTap on the wasm backend's heap (compiled once per heap); throws where WebAssembly has no SIMD.
 * The function sees the heap's growth: it imports the memory itself, not a view of it.
 */
export function accumulateTapFor(backend: unknown): AccumulateTap {
  const memory = heapMemory(backend);
  if (!memory) throw new Error('Conv2DBackpropFilter: the wasm backend does not expose its memory');
  let accumulate = instances.get(memory);
  if (!accumulate) {
    const shared = isShared(memory);
    // The multiply-add where WebAssembly has relaxed SIMD (~1.2x: BENCHMARKS.md), else multiplies and adds.
    const withFma = filterGradModule(shared, true);
    const bytes = hasRelaxedSimd(withFma) ? withFma : filterGradModule(shared, false);
    if (!WebAssembly.validate(bytes)) {
      throw new Error('Conv2DBackpropFilter on wasm needs WebAssembly SIMD (Node.js 16.4 or later)');
    }
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    accumulate = instance.exports.accumulateTap as AccumulateTap;
    instances.set(memory, accumulate);
  }
  return accumulate;
}
