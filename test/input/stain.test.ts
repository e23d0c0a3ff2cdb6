import { describe, expect, it } from 'vitest';
import { balanceStain, REFERENCE_CELL_COLOUR } from '../../src/input/stain.js';

/** A size x size cell: a disc of `colour` on black, with a `dot` of another colour at its centre. */
function cell(size: number, colour: number[], dot?: number[]): Uint8Array {
  const pixels = new Uint8Array(size * size * 3);
  const c = (size - 1) / 2;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const r = Math.hypot(x - c, y - c);
      const value = r < 2 && dot ? dot : r < size / 2 - 1 ? colour : null;
      if (value) pixels.set(value, (y * size + x) * 3);
    }
  return pixels;
}

/** Mean colour of the pixels that are not black. */
function foregroundMean(pixels: Uint8Array): number[] {
  const sums = [0, 0, 0];
  let count = 0;
  for (let i = 0; i < pixels.length; i += 3) {
    if (pixels[i] + pixels[i + 1] + pixels[i + 2] === 0) continue;
    for (let c = 0; c < 3; c++) sums[c] += pixels[i + c];
    count++;
  }
  return sums.map((s) => s / count);
}

describe('balanceStain', () => {
  it("brings a cell's mean colour to the reference and keeps the background black", () => {
    const dark = balanceStain(cell(32, [171, 111, 143]));
    const mean = foregroundMean(dark);
    mean.forEach((m, c) => expect(m).toBeCloseTo(REFERENCE_CELL_COLOUR[c], 0));
    expect(Array.from(dark.subarray(0, 3))).toEqual([0, 0, 0]);
  });

  it('makes one cell under two stains look the same, and keeps a parasite darker than its cell', () => {
    const pale = balanceStain(cell(32, [200, 170, 180], [120, 60, 130]));
    const dark = balanceStain(cell(32, [170, 110, 145], [102, 39, 105]));
    const centre = ((16 * 32 + 16) * 3) as number;
    for (let c = 0; c < 3; c++) expect(Math.abs(pale[centre + c] - dark[centre + c])).toBeLessThanOrEqual(3);
    expect(pale[centre + 1]).toBeLessThan(pale[(16 * 32 + 8) * 3 + 1]);
  });

  it('leaves an all-black image as it is and caps channels at 255', () => {
    expect(Array.from(balanceStain(new Uint8Array(12)))).toEqual(new Array(12).fill(0));
    const bright = balanceStain(cell(16, [40, 40, 40], [250, 250, 250]));
    expect(Math.max(...bright)).toBe(255);
  });
});
