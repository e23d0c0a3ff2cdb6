// The forward 2-D convolution (NHWC, unit dilation) as a WebAssembly SIMD function of our own, run on the wasm
// backend's heap, with what inference does next done as each output is stored: the bias, a residual input, the
// next batch norm's per-channel multiply-add and the ReLU.
//
// A tile is 4 output pixels (consecutive in raster order, so a tile may span rows and images) x 8 output channels:
// 8 vector sums kept in locals (registers) while the function runs over the filter's taps and input channels, each
// step 2 vector loads of weights, 4 broadcast loads of inputs and 8 multiply-adds. Each pixel's input pointer is
// set once per row of its window when the window's columns lie inside the image (the row's taps and channels are
// then contiguous, as are the filter's), else once per tap; a row or tap in the padding points at a block of
// zeros, so the border needs no padded copy of the input. Larger tiles (5 or 6 pixels) and unrolled loops ran
// slower under V8. On the laptop network's shapes (one thread) it runs 1.35-1.7x as fast as XNNPACK's convolution
// (wasm's FusedConv2D) with relaxed SIMD's fused multiply-add, 1.1-1.6x without it (then its sums, made in
// XNNPACK's order, equal XNNPACK's bit for bit).
import v8 from 'node:v8';
import { type Code, encodeModule, I32, op, V128 } from './wasm-binary.js';

/**
 * conv(x, filter, bias, residual, out, zeros, pixelStart, pixelEnd, inHeight, inWidth, inChannels, outHeight,
 * outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth, padTop, padLeft, flags, scale,
 * shift, raw), addresses in bytes. For output pixels p in [pixelStart, pixelEnd) (raster order over images, rows,
 * columns) and channels o:
 *   y = bias[o] + sum_{kh,kw,i} x[input pixel of p at tap (kh, kw)][i] * filter[kh][kw][i][o]   (zeros outside x)
 *   y += residual[p][o]                   (flags & 2)
 *   raw[p][o] = y                         (flags & 16)
 *   y = y * scale[o] + shift[o]           (flags & 8)
 *   out[p][o] = max(y, 0) (flags & 1) or y
 * flags & 4: every tap lies inside the image (no padding to check). outChannels a multiple of 4; `zeros` holds at
 * least max(filterWidth * inChannels, outChannels) zero floats.
 */
export type ConvFunction = (
  x: number,
  filter: number,
  bias: number,
  residual: number,
  out: number,
  zeros: number,
  pixelStart: number,
  pixelEnd: number,
  inHeight: number,
  inWidth: number,
  inChannels: number,
  outHeight: number,
  outWidth: number,
  outChannels: number,
  filterHeight: number,
  filterWidth: number,
  strideHeight: number,
  strideWidth: number,
  padTop: number,
  padLeft: number,
  flags: number,
  scale: number,
  shift: number,
  raw: number,
) => void;

export const CONV_RELU = 1;
export const CONV_RESIDUAL = 2;
export const CONV_INSIDE = 4;
export const CONV_AFFINE = 8;
export const CONV_KEEP_RAW = 16;

// Parameters, in ConvFunction's order.
const X = 0;
const FILTER = 1;
const BIAS = 2;
const RESIDUAL = 3;
const OUT = 4;
const ZEROS = 5;
const PIXEL_START = 6;
const PIXEL_END = 7;
const H = 8;
const W = 9;
const CIN = 10;
const OH = 11;
const OW = 12;
const COUT = 13;
const KH = 14;
const KW = 15;
const SH = 16;
const SW = 17;
const PT = 18;
const PL = 19;
const FLAGS = 20;
const SCALE = 21;
const SHIFT = 22;
const RAW = 23;
const PARAMS = 24;

/** Output pixels and output channels of a tile: 8 sums, 2 weight vectors and 1 input fit 16 vector registers. */
const TILE_PIXELS = 4;
const TILE_CHANNELS = 8;

// Locals after the parameters, numbered in order: i32 ones, then v128 ones.
let nextLocal = PARAMS;
const local = (count = 1) => ((nextLocal += count), nextLocal - count);
const P0 = local();
const O0 = local();
const WP = local();
const KHI = local();
const KWI = local();
const CI = local();
const TAP = local();
const T = local();
/** The tile's pixels all have every column of their window inside the image. */
const COLUMNS_INSIDE = local();
/** COUT * 4, CIN * 4, W * CIN * 4 (from a window's row to the next), KW * CIN (the floats of a window's row). */
const COUT4 = local();
const PIXEL4 = local();
const ROW4 = local();
const ROW_FLOATS = local();
/** The current pixel: image, output row and column, window's first input row and column, window address. */
const N = local();
const OHC = local();
const OWC = local();
const CIH = local();
const CIW = local();
const CBASE = local();
/** SW * CIN * 4: from one output column's window to the next. */
const COLUMN4 = local();
/** Per pixel of the tile: first input row and column of its window, its window's address, its pointer for a tap. */
const IH = local(TILE_PIXELS);
const IW = local(TILE_PIXELS);
const BASE = local(TILE_PIXELS);
const PTR = local(TILE_PIXELS);
const I32_LOCALS = nextLocal - PARAMS;
const ACC = local(2 * TILE_PIXELS);
const B0 = local();
const B1 = local();
const A = local();
const ZERO_VECTOR = local();
const V128_LOCALS = nextLocal - ACC;

const get = op.localGet;
const set = op.localSet;
const i32 = op.i32Const;
const acc = (pixel: number, vector: number) => ACC + 2 * pixel + vector;

/** local += value */
const addTo = (local: number, value: Code): Code => [...get(local), ...value, ...op.i32Add, ...set(local)];

/** Window address of the pixel at (image N, row OHC, column OWC): X + ((N * H + CIH) * W + CIW) * CIN * 4. */
const windowAddress: Code = [
  ...get(X),
  ...get(N),
  ...get(H),
  ...op.i32Mul,
  ...get(CIH),
  ...op.i32Add,
  ...get(W),
  ...op.i32Mul,
  ...get(CIW),
  ...op.i32Add,
  ...get(PIXEL4),
  ...op.i32Mul,
  ...op.i32Add,
  ...set(CBASE),
];

/** The current pixel's image, row, column, window's first row and column, and window address, from P0. */
function startAt(): Code {
  const code: Code = [];
  code.push(...get(P0), ...get(OW), ...op.i32RemU, ...set(OWC));
  code.push(...get(P0), ...get(OW), ...op.i32DivU, ...set(T));
  code.push(...get(T), ...get(OH), ...op.i32RemU, ...set(OHC));
  code.push(...get(T), ...get(OH), ...op.i32DivU, ...set(N));
  code.push(...get(OWC), ...get(SW), ...op.i32Mul, ...get(PL), ...op.i32Sub, ...set(CIW));
  code.push(...get(OHC), ...get(SH), ...op.i32Mul, ...get(PT), ...op.i32Sub, ...set(CIH));
  code.push(...windowAddress);
  return code;
}

/** The current pixel moves one on in raster order (no division: a tile's pixels are set up on every tile). */
const nextPixel: Code = [
  ...addTo(OWC, i32(1)),
  ...addTo(CIW, get(SW)),
  ...addTo(CBASE, get(COLUMN4)),
  ...get(OWC),
  ...get(OW),
  ...op.i32Eq,
  ...op.if,
  ...i32(0),
  ...set(OWC),
  ...get(PL),
  ...i32(-1),
  ...op.i32Mul,
  ...set(CIW),
  ...addTo(OHC, i32(1)),
  ...addTo(CIH, get(SH)),
  ...get(OHC),
  ...get(OH),
  ...op.i32Eq,
  ...op.if,
  ...i32(0),
  ...set(OHC),
  ...get(PT),
  ...i32(-1),
  ...op.i32Mul,
  ...set(CIH),
  ...addTo(N, i32(1)),
  ...op.end,
  ...windowAddress,
  ...op.end,
];

/** Window's first row and column and its address for each of the tile's `pixels` pixels, from the current pixel. */
function pixelSetup(pixels: number): Code {
  const code: Code = [];
  for (let r = 0; r < pixels; r++) {
    code.push(...get(CIH), ...set(IH + r), ...get(CIW), ...set(IW + r), ...get(CBASE), ...set(BASE + r));
    code.push(...nextPixel);
  }
  return code;
}

/**
 * How a tile finds its input: 'inside', every tap of every window lies in the image (no padding); 'rows', the
 * windows' columns do, so only a whole row of the window can fall in the padding; 'taps', check every tap.
 * Where a window's row is inside, its KW * CIN floats are contiguous, as are the filter's for that row: one loop.
 */
type Reach = 'inside' | 'rows' | 'taps';

/** The sums of `pixels` pixels x `channels` output channels at O0, added up over every tap and input channel. */
function tileSums(pixels: number, channels: number, reach: Reach, fma: boolean): Code {
  const vectors = channels / 4;
  const code: Code = [];
  for (let r = 0; r < pixels; r++) {
    for (let v = 0; v < vectors; v++) {
      code.push(...get(BIAS), ...get(O0), ...i32(4), ...op.i32Mul, ...op.i32Add, ...op.v128Load(16 * v));
      code.push(...set(acc(r, v)));
    }
  }
  code.push(...get(FILTER), ...get(O0), ...i32(4), ...op.i32Mul, ...op.i32Add, ...set(WP));
  code.push(...i32(0), ...set(KHI), ...op.loop);
  if (reach === 'taps') {
    code.push(...i32(0), ...set(KWI), ...op.loop);
    // TAP = (KHI * W + KWI) * CIN * 4: where the tap's input pixel lies from the window's first
    code.push(...get(KHI), ...get(W), ...op.i32Mul, ...get(KWI), ...op.i32Add, ...get(PIXEL4), ...op.i32Mul);
  } else {
    code.push(...get(KHI), ...get(ROW4), ...op.i32Mul);
  }
  code.push(...set(TAP));
  for (let r = 0; r < pixels; r++) {
    code.push(...get(BASE + r), ...get(TAP), ...op.i32Add);
    if (reach !== 'inside') {
      // A row or tap in the padding reads zeros: (unsigned) IH + KHI < H (and IW + KWI < W), or else.
      code.push(...get(ZEROS), ...get(IH + r), ...get(KHI), ...op.i32Add, ...get(H), ...op.i32LtU);
      if (reach === 'taps') code.push(...get(IW + r), ...get(KWI), ...op.i32Add, ...get(W), ...op.i32LtU, ...op.i32And);
      code.push(...op.select);
    }
    code.push(...set(PTR + r));
  }
  code.push(...get(reach === 'taps' ? CIN : ROW_FLOATS), ...set(CI), ...op.loop);
  code.push(...get(WP), ...op.v128Load(0), ...set(B0));
  if (vectors > 1) code.push(...get(WP), ...op.v128Load(16), ...set(B1));
  for (let r = 0; r < pixels; r++) {
    code.push(...get(PTR + r), ...op.v128Load32Splat(0), ...set(A));
    for (let v = 0; v < vectors; v++) {
      const product = [...get(A), ...get(v ? B1 : B0)];
      if (fma) code.push(...product, ...get(acc(r, v)), ...op.f32x4RelaxedMadd, ...set(acc(r, v)));
      else code.push(...get(acc(r, v)), ...product, ...op.f32x4Mul, ...op.f32x4Add, ...set(acc(r, v)));
    }
    code.push(...addTo(PTR + r, i32(4)));
  }
  code.push(...addTo(WP, get(COUT4)));
  code.push(...get(CI), ...i32(1), ...op.i32Sub, ...op.localTee(CI), ...op.brIf(0), ...op.end);
  if (reach === 'taps') {
    code.push(...get(KWI), ...i32(1), ...op.i32Add, ...op.localTee(KWI), ...get(KW), ...op.i32LtS);
    code.push(...op.brIf(0), ...op.end);
  }
  code.push(
    ...get(KHI),
    ...i32(1),
    ...op.i32Add,
    ...op.localTee(KHI),
    ...get(KH),
    ...op.i32LtS,
    ...op.brIf(0),
    ...op.end,
  );
  return code;
}

/** Adds the residual, stores the raw sums, applies the affine and the ReLU (as flags say), and stores the tile. */
function tileStore(pixels: number, channels: number): Code {
  const vectors = channels / 4;
  const code: Code = [];
  const flag = (bit: number): Code => [...get(FLAGS), ...i32(bit), ...op.i32And, ...op.if];
  const perChannel = (base: number, v: number): Code => [
    ...get(base),
    ...get(O0),
    ...i32(4),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.v128Load(16 * v),
  ];
  for (let r = 0; r < pixels; r++) {
    // T = ((P0 + r) * COUT + O0) * 4: the pixel's first output channel of the tile, in out and in residual
    code.push(...get(P0), ...i32(r), ...op.i32Add, ...get(COUT), ...op.i32Mul, ...get(O0), ...op.i32Add);
    code.push(...i32(4), ...op.i32Mul, ...set(T));
    code.push(...flag(CONV_RESIDUAL));
    for (let v = 0; v < vectors; v++) {
      code.push(...get(acc(r, v)), ...get(RESIDUAL), ...get(T), ...op.i32Add, ...op.v128Load(16 * v));
      code.push(...op.f32x4Add, ...set(acc(r, v)));
    }
    code.push(...op.end, ...flag(CONV_KEEP_RAW));
    for (let v = 0; v < vectors; v++) {
      code.push(...get(RAW), ...get(T), ...op.i32Add, ...get(acc(r, v)), ...op.v128Store(16 * v));
    }
    code.push(...op.end, ...flag(CONV_AFFINE));
    for (let v = 0; v < vectors; v++) {
      code.push(...get(acc(r, v)), ...perChannel(SCALE, v), ...op.f32x4Mul, ...perChannel(SHIFT, v), ...op.f32x4Add);
      code.push(...set(acc(r, v)));
    }
    code.push(...op.end, ...flag(CONV_RELU));
    for (let v = 0; v < vectors; v++) {
      code.push(...get(acc(r, v)), ...get(ZERO_VECTOR), ...op.f32x4Max, ...set(acc(r, v)));
    }
    code.push(...op.end);
    for (let v = 0; v < vectors; v++) {
      code.push(...get(OUT), ...get(T), ...op.i32Add, ...get(acc(r, v)), ...op.v128Store(16 * v));
    }
  }
  return code;
}

/** Every block of 8 output channels (4 for the last when outChannels is 8k+4) of a tile set up at P0. */
function channelBlocks(pixels: number, reach: Reach, fma: boolean): Code {
  const block = (channels: number) => [...tileSums(pixels, channels, reach, fma), ...tileStore(pixels, channels)];
  const code: Code = [];
  code.push(...i32(0), ...set(O0), ...op.loop);
  code.push(...get(COUT), ...get(O0), ...op.i32Sub, ...i32(TILE_CHANNELS), ...op.i32LtS, ...op.if);
  code.push(...block(4), ...op.i32Const(4), ...set(T), ...op.else);
  code.push(...block(TILE_CHANNELS), ...i32(TILE_CHANNELS), ...set(T), ...op.end);
  code.push(...addTo(O0, get(T)));
  code.push(...get(O0), ...get(COUT), ...op.i32LtS, ...op.brIf(0), ...op.end);
  return code;
}

/** One tile of `pixels` pixels at P0; `inside`: the convolution has no padding. */
function tile(pixels: number, inside: boolean, fma: boolean): Code {
  const code: Code = [...pixelSetup(pixels)];
  if (inside) return [...code, ...channelBlocks(pixels, 'inside', fma)];
  // COLUMNS_INSIDE = every 0 <= IW and IW + KW <= W
  code.push(...i32(1), ...set(COLUMNS_INSIDE));
  for (let r = 0; r < pixels; r++) {
    code.push(...get(IW + r), ...i32(0), ...op.i32GeS, ...get(W), ...get(KW), ...op.i32Sub, ...get(IW + r));
    code.push(...op.i32Sub, ...i32(0), ...op.i32GeS, ...op.i32And, ...get(COLUMNS_INSIDE), ...op.i32And);
    code.push(...set(COLUMNS_INSIDE));
  }
  code.push(...get(COLUMNS_INSIDE), ...op.if, ...channelBlocks(pixels, 'rows', fma), ...op.else);
  code.push(...channelBlocks(pixels, 'taps', fma), ...op.end);
  return code;
}

/** Tiles of `pixels` pixels from P0 while a whole one fits before PIXEL_END. */
function tiles(pixels: number, inside: boolean, fma: boolean): Code {
  return [
    ...op.block,
    ...op.loop,
    ...get(P0),
    ...i32(pixels),
    ...op.i32Add,
    ...get(PIXEL_END),
    ...op.i32GtS,
    ...op.brIf(1),
    ...tile(pixels, inside, fma),
    ...addTo(P0, i32(pixels)),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

function convBody(fma: boolean): Code {
  const code: Code = [];
  code.push(...i32(0), ...op.i32x4Splat, ...set(ZERO_VECTOR));
  code.push(...get(COUT), ...i32(4), ...op.i32Mul, ...set(COUT4));
  code.push(...get(CIN), ...i32(4), ...op.i32Mul, ...set(PIXEL4));
  code.push(...get(SW), ...get(PIXEL4), ...op.i32Mul, ...set(COLUMN4));
  code.push(...get(W), ...get(PIXEL4), ...op.i32Mul, ...set(ROW4));
  code.push(...get(KW), ...get(CIN), ...op.i32Mul, ...set(ROW_FLOATS));
  code.push(...get(PIXEL_START), ...set(P0), ...startAt());
  // Without padding to check, the taps' pointers need no test (1x1 convolutions, 'valid' ones).
  code.push(...get(FLAGS), ...i32(CONV_INSIDE), ...op.i32And, ...op.if);
  code.push(...tiles(TILE_PIXELS, true, fma), ...tiles(1, true, fma), ...op.else);
  code.push(...tiles(TILE_PIXELS, false, fma), ...tiles(1, false, fma), ...op.end);
  return code;
}

/**
 * The module's bytes, for a shared memory (the threaded build's) or not; with `fma`, the products are added by
 * relaxed SIMD's multiply-add (one fused instruction on x64 with FMA and on ARM, instead of two).
 */
export function convModule(sharedMemory: boolean, fma: boolean): Uint8Array<ArrayBuffer> {
  const params = new Array<number>(PARAMS).fill(I32);
  const locals: [number, number][] = [
    [I32_LOCALS, I32],
    [V128_LOCALS, V128],
  ];
  return encodeModule([{ name: 'conv', params, locals, body: convBody(fma) }], sharedMemory);
}

/**
 * Whether this WebAssembly has relaxed SIMD: on by default from Node 22 (V8 11.4); Node 20's V8 has it behind a
 * flag, which is read when a module is validated or compiled, so it is turned on here for the modules that follow.
 */
export function hasRelaxedSimd(module: Uint8Array<ArrayBuffer>): boolean {
  if (WebAssembly.validate(module)) return true;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return WebAssembly.validate(module);
}

const instances = new WeakMap<WebAssembly.Memory, ConvFunction>();

/**
 * conv on `memory` (compiled once per memory): with relaxed SIMD's multiply-add where WebAssembly has it (about
 * 1.3x faster), else with SIMD's multiplies and adds; throws where WebAssembly has no SIMD.
 */
export function convFunctionFor(memory: WebAssembly.Memory): ConvFunction {
  let conv = instances.get(memory);
  if (!conv) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const withFma = convModule(shared, true);
    const bytes = hasRelaxedSimd(withFma) ? withFma : convModule(shared, false);
    if (!WebAssembly.validate(bytes)) throw new Error('the inference convolution needs WebAssembly SIMD');
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    conv = instance.exports.conv as ConvFunction;
    instances.set(memory, conv);
  }
  return conv;
}
