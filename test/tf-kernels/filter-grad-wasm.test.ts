// The filter gradient's SIMD loop against a plain JavaScript loop, on a memory of its own: every tile size (1-4
// input channels left over, 4 or 8 output channels), strided rectangles, and sums that start non-zero.
import { describe, expect, it } from 'vitest';
import seedrandom from 'seedrandom';
import { hasRelaxedSimd } from '../../src/tf-kernels/conv-wasm.js';
import { type AccumulateTap, filterGradModule } from '../../src/tf-kernels/filter-grad-wasm.js';

const F = 4; // bytes per float

interface Layout {
  rows: number;
  cols: number;
  inChannels: number;
  outChannels: number;
  /** Pixels between rows and between columns of the rectangle, in x and in dy. */
  xRowPixels: number;
  xColPixels: number;
  dyRowPixels: number;
}

function check(memory: WebAssembly.Memory, accumulate: AccumulateTap, l: Layout, seed: string): void {
  const heap = new Float32Array(memory.buffer);
  const random = seedrandom(seed);
  // x at float 0, dy after it, sums after dy; pixels of x are inChannels apart, of dy outChannels.
  const xFloats = ((l.rows - 1) * l.xRowPixels + (l.cols - 1) * l.xColPixels + 1) * l.inChannels;
  const dyFloats = ((l.rows - 1) * l.dyRowPixels + l.cols) * l.outChannels;
  const dy = xFloats;
  const sums = dy + dyFloats;
  const sumsRow = l.outChannels + 4; // rows of sums further apart than one row's width
  const total = sums + l.inChannels * sumsRow;
  for (let i = 0; i < total; i++) heap[i] = random() * 2 - 1;
  const expected = heap.slice(sums, total);
  for (let r = 0; r < l.rows; r++) {
    for (let c = 0; c < l.cols; c++) {
      const xp = (r * l.xRowPixels + c * l.xColPixels) * l.inChannels;
      const dp = dy + (r * l.dyRowPixels + c) * l.outChannels;
      for (let i = 0; i < l.inChannels; i++) {
        for (let o = 0; o < l.outChannels; o++) expected[i * sumsRow + o] += heap[xp + i] * heap[dp + o];
      }
    }
  }
  accumulate(
    0,
    dy * F,
    sums * F,
    l.rows,
    l.cols,
    l.xRowPixels * l.inChannels * F,
    l.xColPixels * l.inChannels * F,
    l.dyRowPixels * l.outChannels * F,
    l.outChannels * F,
    l.inChannels,
    l.outChannels,
    sumsRow * F,
  );
  const actual = heap.subarray(sums, total);
  for (let k = 0; k < expected.length; k++) {
    expect(Math.abs(actual[k] - expected[k]), `${JSON.stringify(l)} at ${k}`).toBeLessThan(1e-4);
  }
}

/** The loop compiled for `memory`, with relaxed SIMD's multiply-add or with multiplies and adds. */
function accumulateOn(memory: WebAssembly.Memory, shared: boolean, fma: boolean): AccumulateTap {
  const bytes = filterGradModule(shared, fma);
  // Node 20 and 22 have relaxed SIMD (20 behind the flag hasRelaxedSimd turns on); plain SIMD validates anywhere.
  expect(fma ? hasRelaxedSimd(bytes) : WebAssembly.validate(bytes)).toBe(true);
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports
    .accumulateTap as AccumulateTap;
}

describe('filter gradient SIMD loop', () => {
  for (const [shared, fma] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    it(`matches a plain loop on every tile size (${shared ? 'shared' : 'own'} memory, ${fma ? 'multiply-add' : 'multiply and add'})`, () => {
      const memory = new WebAssembly.Memory(shared ? { initial: 16, maximum: 65536, shared: true } : { initial: 16 });
      const accumulate = accumulateOn(memory, shared, fma);
      for (let inChannels = 1; inChannels <= 9; inChannels++) {
        for (const outChannels of [4, 8, 12, 20]) {
          const layout = { rows: 3, cols: 5, inChannels, outChannels, xRowPixels: 13, xColPixels: 2, dyRowPixels: 6 };
          check(memory, accumulate, layout, `${inChannels}/${outChannels}`);
        }
      }
      // One pixel, and one long row.
      check(
        memory,
        accumulate,
        { rows: 1, cols: 1, inChannels: 3, outChannels: 16, xRowPixels: 1, xColPixels: 1, dyRowPixels: 1 },
        'one',
      );
      check(
        memory,
        accumulate,
        { rows: 1, cols: 200, inChannels: 8, outChannels: 8, xRowPixels: 200, xColPixels: 1, dyRowPixels: 200 },
        'row',
      );
    });
  }
});
