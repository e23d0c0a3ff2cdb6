import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import {
  affineMatrix,
  applyChannelGains,
  augmentInto,
  IDENTITY_PARAMS,
  randomAffineParams,
  scaleToUnit,
  TUTORIAL_AUGMENTATION,
  warpAffine,
  type AffineParams,
} from '../../src/input/augment.js';

/** A size x size x 3 image of seeded random bytes in [low, 255]. */
function randomImage(size: number, seed: string, low = 0): Uint8Array {
  const random = seedrandom(seed);
  const image = new Uint8Array(size * size * 3);
  for (let i = 0; i < image.length; i++) image[i] = low + Math.floor(random() * (256 - low));
  return image;
}

const pixel = (image: ArrayLike<number>, size: number, x: number, y: number, c: number): number =>
  image[(y * size + x) * 3 + c];

function warp(image: Uint8Array, size: number, params: Partial<AffineParams>): Float32Array {
  const out = new Float32Array(size * size * 3);
  augmentInto(image, size, { ...IDENTITY_PARAMS, ...params }, out);
  return out;
}

describe('randomAffineParams', () => {
  it('draws within the tutorial ranges (shear in degrees, shifts in pixels) and flips about half the time', () => {
    const random = seedrandom('ranges');
    const size = 64;
    const draws = Array.from({ length: 4000 }, () => randomAffineParams(random, size));
    const range = (pick: (p: AffineParams) => number): [number, number] => {
      const values = draws.map(pick);
      return [Math.min(...values), Math.max(...values)];
    };
    const [rotMin, rotMax] = range((p) => p.rotationDeg);
    expect(rotMin).toBeGreaterThanOrEqual(-20);
    expect(rotMax).toBeLessThanOrEqual(20);
    expect(rotMin).toBeLessThan(-19); // the whole range is used, not a fraction of it
    expect(rotMax).toBeGreaterThan(19);
    for (const pick of [(p: AffineParams) => p.zoomX, (p: AffineParams) => p.zoomY]) {
      const [low, high] = range(pick);
      expect(low).toBeGreaterThanOrEqual(0.95);
      expect(high).toBeLessThanOrEqual(1.05);
      expect(high - low).toBeGreaterThan(0.09);
    }
    for (const pick of [(p: AffineParams) => p.shiftX, (p: AffineParams) => p.shiftY]) {
      const [low, high] = range(pick);
      expect(low).toBeGreaterThanOrEqual(-0.05 * size);
      expect(high).toBeLessThanOrEqual(0.05 * size);
      expect(high - low).toBeGreaterThan(0.09 * size);
    }
    const [shearMin, shearMax] = range((p) => p.shearDeg);
    expect(shearMin).toBeGreaterThanOrEqual(-0.05);
    expect(shearMax).toBeLessThanOrEqual(0.05);
    const flips = draws.filter((p) => p.flip).length / draws.length;
    expect(flips).toBeGreaterThan(0.45);
    expect(flips).toBeLessThan(0.55);
    // zoom x and y are independent draws
    expect(draws.some((p) => Math.abs(p.zoomX - p.zoomY) > 0.01)).toBe(true);
  });

  it('is reproducible for a seed and differs between seeds', () => {
    const a = randomAffineParams(seedrandom('s1'), 64);
    const b = randomAffineParams(seedrandom('s1'), 64);
    const c = randomAffineParams(seedrandom('s2'), 64);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('never flips when horizontalFlip is off', () => {
    const random = seedrandom('noflip');
    const ranges = { ...TUTORIAL_AUGMENTATION, horizontalFlip: false };
    expect(Array.from({ length: 200 }, () => randomAffineParams(random, 64, ranges)).some((p) => p.flip)).toBe(false);
  });
});

describe('affineMatrix', () => {
  it('reads the shear as degrees, as Keras does', () => {
    const m = affineMatrix({ ...IDENTITY_PARAMS, shearDeg: 0.05 }, 64);
    expect(m[1]).toBeCloseTo(-Math.sin((0.05 * Math.PI) / 180), 12);
    expect(Math.abs(m[1])).toBeLessThan(1e-3); // 0.05 radians would give -0.05
  });

  it('is exactly the identity for identity parameters', () => {
    expect(Array.from(affineMatrix(IDENTITY_PARAMS, 64))).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  });
});

describe('warpAffine', () => {
  const size = 6;
  const image = randomImage(size, 'img');

  it('reproduces the input exactly with identity parameters', () => {
    const out = warp(image, size, {});
    const scaled = new Float32Array(image.length);
    scaleToUnit(image, scaled);
    expect(Array.from(out)).toEqual(Array.from(scaled));
    expect(Array.from(out, (v) => Math.round(v * 255))).toEqual(Array.from(image));
  });

  it('mirrors columns for a pure horizontal flip', () => {
    const out = warp(image, size, { flip: true });
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        for (let c = 0; c < 3; c++)
          expect(pixel(out, size, x, y, c) * 255).toBeCloseTo(pixel(image, size, size - 1 - x, y, c), 4);
      }
    }
  });

  it('rotates by 90 degrees about the centre: output (x, y) samples input (size-1-y, x)', () => {
    const out = warp(image, size, { rotationDeg: 90 });
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        for (let c = 0; c < 3; c++)
          expect(pixel(out, size, x, y, c) * 255).toBeCloseTo(pixel(image, size, size - 1 - y, x, c), 3);
      }
    }
  });

  it('shifts by whole pixels and repeats the edge (fill_mode nearest)', () => {
    const out = warp(image, size, { shiftX: 2 });
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const sourceX = Math.min(size - 1, x + 2);
        for (let c = 0; c < 3; c++)
          expect(pixel(out, size, x, y, c) * 255).toBeCloseTo(pixel(image, size, sourceX, y, c), 4);
      }
    }
  });

  it('samples bilinearly between pixels (Keras order=1)', () => {
    const out = warp(image, size, { shiftY: 0.5 });
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        const expected = (pixel(image, size, x, 1, c) + pixel(image, size, x, 2, c)) / 2;
        expect(pixel(out, size, x, 1, c) * 255).toBeCloseTo(expected, 3);
      }
    }
  });

  it('zooms about the centre pixel', () => {
    const odd = 7;
    const img = randomImage(odd, 'zoom');
    const out = warp(img, odd, { zoomX: 2, zoomY: 2 });
    // centre (3,3) stays; (4,3) samples 3 + 2 * (4 - 3) = 5
    for (let c = 0; c < 3; c++) {
      expect(pixel(out, odd, 3, 3, c) * 255).toBeCloseTo(pixel(img, odd, 3, 3, c), 4);
      expect(pixel(out, odd, 4, 3, c) * 255).toBeCloseTo(pixel(img, odd, 5, 3, c), 4);
    }
  });

  it('leaves no black corners: every output value lies within the input values', () => {
    const big = 32;
    const bright = randomImage(big, 'bright', 60); // no pixel below 60
    const params = {
      ...IDENTITY_PARAMS,
      rotationDeg: 20,
      zoomX: 1.05,
      zoomY: 1.05,
      shiftX: 1.6,
      shiftY: -1.6,
      shearDeg: 0.05,
    };
    // The corners of the output sample outside the input, where a constant fill would paint black.
    const m = affineMatrix(params, big);
    const corners = [0, big - 1].flatMap((y) =>
      [0, big - 1].map((x) => [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]]),
    );
    expect(corners.filter(([sx, sy]) => sx < 0 || sy < 0 || sx > big - 1 || sy > big - 1).length).toBeGreaterThan(0);
    const out = warp(bright, big, params);
    expect(Math.min(...out) * 255).toBeGreaterThanOrEqual(60 - 1e-3);
    expect(Math.max(...out)).toBeLessThanOrEqual(1);
  });

  it('writes only its slot of a batch array and keeps values in [0, 1]', () => {
    const s = 16;
    const img = randomImage(s, 'slot');
    const pixels = s * s * 3;
    const batch = new Float32Array(pixels * 3).fill(Number.NaN);
    const params = randomAffineParams(seedrandom('slot'), s);
    warpAffine(img, s, affineMatrix(params, s), batch, pixels);
    const before = batch.subarray(0, pixels);
    const slot = batch.subarray(pixels, 2 * pixels);
    const after = batch.subarray(2 * pixels);
    expect(before.every(Number.isNaN)).toBe(true);
    expect(after.every(Number.isNaN)).toBe(true);
    expect(slot.every((v) => v >= 0 && v <= 1)).toBe(true);
  });

  it('is reproducible with a seed: same seed, identical floats; another seed, different floats', () => {
    const s = 16;
    const img = randomImage(s, 'repro');
    const run = (seed: string): Float32Array => warp(img, s, randomAffineParams(seedrandom(seed), s));
    expect(Array.from(run('a'))).toEqual(Array.from(run('a')));
    expect(Array.from(run('b'))).not.toEqual(Array.from(run('a')));
  });
});

describe('channel gains (colour augmentation)', () => {
  it('multiplies each channel by its factor and caps at 1; black stays black', () => {
    const x = Float32Array.from([0.5, 0.5, 0.5, 0, 0, 0, 0.9, 0.2, 0.4]);
    applyChannelGains(x, 3, 6, [1.2, 0.5, 2]);
    expect(Array.from(x.subarray(0, 3))).toEqual([0.5, 0.5, 0.5]); // before the offset: untouched
    expect(Array.from(x.subarray(3, 6))).toEqual([0, 0, 0]);
    expect(x[6]).toBeCloseTo(1, 6); // 0.9 * 1.2 capped
    expect(x[7]).toBeCloseTo(0.1, 6);
    expect(x[8]).toBeCloseTo(0.8, 6);
  });
});
