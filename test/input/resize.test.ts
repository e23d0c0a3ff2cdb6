import { describe, expect, it } from 'vitest';
import { resizeArea, resizeImage, resizeNearest, type RgbImage } from '../../src/input/resize.js';

/** A width x height RGB image whose pixel (x, y) has all three channels equal to value(x, y). */
function gray(width: number, height: number, value: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.fill(value(x, y), (y * width + x) * 3, (y * width + x + 1) * 3);
  return { data, width, height };
}

const red = (image: Uint8Array): number[] => Array.from(image.filter((_, i) => i % 3 === 0));
const mean = (values: ArrayLike<number>): number => Array.from(values).reduce((a, b) => a + b, 0) / values.length;

describe('resizeArea', () => {
  it('halving averages each 2x2 block', () => {
    const image = gray(4, 4, (x, y) => 10 * (y * 4 + x));
    // Blocks: (0,1,4,5) -> 25, (2,3,6,7) -> 45, (8,9,12,13) -> 105, (10,11,14,15) -> 125 (times 10 / 4).
    expect(red(resizeArea(image, 2))).toEqual([25, 45, 105, 125]);
  });

  it('keeps an image of its own size, and a uniform image uniform at any size', () => {
    const image = gray(7, 7, (x, y) => (x * 31 + y * 17) % 256);
    expect(resizeArea(image, 7)).toEqual(image.data);
    for (const size of [5, 48, 64])
      expect(
        new Set(
          resizeArea(
            gray(131, 97, () => 200),
            size,
          ),
        ),
      ).toEqual(new Set([200]));
  });

  it('keeps the brightness of fine detail that nearest sampling misses or exaggerates', () => {
    // Every third column is bright; 96 -> 32 samples columns 1, 4, 7... with nearest: the bright ones only.
    const stripes = gray(96, 96, (x) => (x % 3 === 1 ? 255 : 0));
    expect(mean(resizeNearest(stripes, 32))).toBe(255);
    expect(mean(resizeArea(stripes, 32))).toBe(85);
    // One bright pixel (a parasite's chromatin dot at 130 -> 48): nearest drops it, area keeps its share.
    const dot = gray(130, 130, (x, y) => (x === 61 && y === 60 ? 255 : 0));
    expect(Math.max(...resizeNearest(dot, 48))).toBe(0);
    const kept = resizeArea(dot, 48);
    expect(Math.max(...kept)).toBeGreaterThan(20);
    expect(red(kept).reduce((a, b) => a + b, 0)).toBeCloseTo(255 * (48 / 130) ** 2, -1);
  });

  it('enlarging (small cells) stays within the source range', () => {
    const image = gray(40, 36, (x, y) => 50 + ((x + y) % 2) * 100);
    const out = resizeArea(image, 48);
    expect(Math.min(...out)).toBeGreaterThanOrEqual(50);
    expect(Math.max(...out)).toBeLessThanOrEqual(150);
    expect(mean(out)).toBeCloseTo(100, -1);
  });

  it('resizeImage picks the method by name', () => {
    const stripes = gray(96, 96, (x) => (x % 3 === 1 ? 255 : 0));
    expect(resizeImage(stripes, 32, 'nearest')).toEqual(resizeNearest(stripes, 32));
    expect(resizeImage(stripes, 32, 'area')).toEqual(resizeArea(stripes, 32));
  });
});
