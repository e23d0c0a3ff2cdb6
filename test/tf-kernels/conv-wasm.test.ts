// The inference convolution's SIMD function against plain JavaScript loops, on a memory of its own, in both its
// builds (relaxed SIMD's multiply-add, and SIMD's multiplies and adds): padding on every side or none, strides,
// filters wider than the image, 4-channel blocks, tiles across rows and images, a pixel range that starts
// mid-row, and the residual, batch-norm, raw-output and ReLU steps of the store.
import { describe, expect, it } from 'vitest';
import seedrandom from 'seedrandom';
import {
  CONV_AFFINE,
  CONV_INSIDE,
  CONV_KEEP_RAW,
  CONV_RELU,
  CONV_RESIDUAL,
  convFunctionFor,
  convModule,
  type ConvFunction,
} from '../../src/tf-kernels/conv-wasm.js';

const F = 4; // bytes per float

interface Case {
  name: string;
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  stride: number;
  pad: 'same' | 'valid';
  flags: number;
  /** Output pixels computed: [start, end) (default all). */
  range?: [number, number];
}

const CASES: Case[] = [
  {
    name: 'stem-like 3x3 same, 3 input channels, pixels not a multiple of 4',
    ...{ batch: 2, height: 7, width: 7, inChannels: 3, outChannels: 16, filterHeight: 3, filterWidth: 3 },
    ...{ stride: 1, pad: 'same', flags: 0 },
  },
  {
    name: '3x3 stride 2 same on odd sizes, 12 output channels (a block of 8 and one of 4), ReLU',
    ...{ batch: 3, height: 5, width: 7, inChannels: 8, outChannels: 12, filterHeight: 3, filterWidth: 3 },
    ...{ stride: 2, pad: 'same', flags: CONV_RELU },
  },
  {
    name: '1x1 without padding, 4 output channels, residual',
    ...{ batch: 1, height: 6, width: 5, inChannels: 4, outChannels: 4, filterHeight: 1, filterWidth: 1 },
    ...{ stride: 1, pad: 'same', flags: CONV_RESIDUAL },
  },
  {
    name: '3x3 valid with residual, batch norm, raw output and ReLU',
    ...{ batch: 2, height: 9, width: 6, inChannels: 5, outChannels: 20, filterHeight: 3, filterWidth: 3 },
    ...{ stride: 1, pad: 'valid', flags: CONV_RESIDUAL | CONV_AFFINE | CONV_KEEP_RAW | CONV_RELU },
  },
  {
    name: '1x1 stride 2 (no padding) with batch norm only',
    ...{ batch: 2, height: 8, width: 8, inChannels: 16, outChannels: 8, filterHeight: 1, filterWidth: 1 },
    ...{ stride: 2, pad: 'same', flags: CONV_AFFINE },
  },
  {
    name: '2x2 stride 2 same on odd sizes: padding only after the image',
    ...{ batch: 2, height: 5, width: 7, inChannels: 3, outChannels: 8, filterHeight: 2, filterWidth: 2 },
    ...{ stride: 2, pad: 'same', flags: CONV_RELU },
  },
  {
    name: '5x5 same on a 3x4 image: windows wider than the image',
    ...{ batch: 2, height: 3, width: 4, inChannels: 6, outChannels: 8, filterHeight: 5, filterWidth: 5 },
    ...{ stride: 1, pad: 'same', flags: 0 },
  },
  {
    name: '3x3 same over a range of pixels that starts and ends mid-row',
    ...{ batch: 3, height: 5, width: 6, inChannels: 4, outChannels: 8, filterHeight: 3, filterWidth: 3 },
    ...{ stride: 1, pad: 'same', flags: CONV_RESIDUAL | CONV_RELU, range: [13, 77] },
  },
];

/** tfjs' geometry: output size, and the padding before the image (the rest goes after). */
function geometry(c: Case) {
  const out = (size: number, filter: number) =>
    c.pad === 'same' ? Math.ceil(size / c.stride) : Math.floor((size - filter) / c.stride) + 1;
  const outHeight = out(c.height, c.filterHeight);
  const outWidth = out(c.width, c.filterWidth);
  const padding = (outSize: number, filter: number, size: number) =>
    c.pad === 'same' ? Math.max(0, (outSize - 1) * c.stride + filter - size) : 0;
  const padHeight = padding(outHeight, c.filterHeight, c.height);
  const padWidth = padding(outWidth, c.filterWidth, c.width);
  return { outHeight, outWidth, padTop: padHeight >> 1, padLeft: padWidth >> 1, padded: padHeight + padWidth > 0 };
}

function check(conv: ConvFunction, memory: WebAssembly.Memory, c: Case, seed: string): void {
  const heap = new Float32Array(memory.buffer);
  const random = seedrandom(seed);
  const g = geometry(c);
  const pixels = c.batch * g.outHeight * g.outWidth;
  const [start, end] = c.range ?? [0, pixels];
  let next = 4; // float 0 is never used: an address of 0 means "none"
  const region = (floats: number) => ((next += floats + 4), next - floats - 4);
  const x = region(c.batch * c.height * c.width * c.inChannels);
  const filter = region(c.filterHeight * c.filterWidth * c.inChannels * c.outChannels);
  const bias = region(c.outChannels);
  const scale = region(c.outChannels);
  const shift = region(c.outChannels);
  const residual = region(pixels * c.outChannels);
  const zeros = region(Math.max(c.filterWidth * c.inChannels, c.outChannels));
  const out = region(pixels * c.outChannels);
  const raw = region(pixels * c.outChannels);
  heap.fill(0, 0, next);
  for (let i = x; i < zeros; i++) heap[i] = random() * 2 - 1;
  const sentinel = 12345;
  heap.fill(sentinel, out, next);

  const args = [
    ...[x, filter, bias, residual, out, zeros].map((a) => a * F),
    ...[start, end, c.height, c.width, c.inChannels, g.outHeight, g.outWidth, c.outChannels],
    ...[c.filterHeight, c.filterWidth, c.stride, c.stride, g.padTop, g.padLeft],
    c.flags | (g.padded ? 0 : CONV_INSIDE),
    ...[scale, shift, raw].map((a) => a * F),
  ];
  (conv as (...values: number[]) => void)(...args);

  let worst = 0;
  for (let p = 0; p < pixels; p++) {
    const image = Math.floor(p / (g.outHeight * g.outWidth));
    const row = Math.floor(p / g.outWidth) % g.outHeight;
    const col = p % g.outWidth;
    for (let o = 0; o < c.outChannels; o++) {
      const at = p * c.outChannels + o;
      if (p < start || p >= end) {
        expect(heap[out + at], `${c.name}: pixel ${p} outside the range was written`).toBe(sentinel);
        continue;
      }
      let y = heap[bias + o];
      for (let kh = 0; kh < c.filterHeight; kh++) {
        for (let kw = 0; kw < c.filterWidth; kw++) {
          const inRow = row * c.stride + kh - g.padTop;
          const inCol = col * c.stride + kw - g.padLeft;
          if (inRow < 0 || inRow >= c.height || inCol < 0 || inCol >= c.width) continue;
          for (let i = 0; i < c.inChannels; i++) {
            const xi = x + ((image * c.height + inRow) * c.width + inCol) * c.inChannels + i;
            y += heap[xi] * heap[filter + ((kh * c.filterWidth + kw) * c.inChannels + i) * c.outChannels + o];
          }
        }
      }
      if (c.flags & CONV_RESIDUAL) y += heap[residual + at];
      if (c.flags & CONV_KEEP_RAW) worst = Math.max(worst, Math.abs(heap[raw + at] - y));
      else expect(heap[raw + at], `${c.name}: raw written without the flag`).toBe(sentinel);
      if (c.flags & CONV_AFFINE) y = y * heap[scale + o] + heap[shift + o];
      if (c.flags & CONV_RELU) y = Math.max(y, 0);
      worst = Math.max(worst, Math.abs(heap[out + at] - y));
    }
  }
  // Sums of up to 150 products of values in [-1, 1): float32 rounding stays far below this.
  expect(worst, c.name).toBeLessThan(1e-4);
}

function instantiate(bytes: Uint8Array<ArrayBuffer>, memory: WebAssembly.Memory): ConvFunction {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.conv as ConvFunction;
}

describe('the inference convolution in WebAssembly', () => {
  const memory = new WebAssembly.Memory({ initial: 4 });

  it('with SIMD multiplies and adds matches plain loops', () => {
    const conv = instantiate(convModule(false, false), memory);
    CASES.forEach((c, i) => check(conv, memory, c, `plain ${i}`));
  });

  it("with relaxed SIMD's multiply-add (what convFunctionFor picks on Node 20 and later) matches plain loops", () => {
    const picked = convFunctionFor(memory); // turns relaxed SIMD on where it is behind a flag
    const withFma = convModule(false, true);
    expect(WebAssembly.validate(withFma)).toBe(true);
    const conv = instantiate(withFma, memory);
    CASES.forEach((c, i) => check(conv, memory, c, `fma ${i}`));
    CASES.forEach((c, i) => check(picked, memory, c, `picked ${i}`));
  });
});
