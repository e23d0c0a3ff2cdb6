import { describe, expect, it } from 'vitest';
import { polynomialDecay } from '../../src/model/schedule.js';

describe('polynomialDecay', () => {
  it('decays linearly by default: a 4-epoch run at 0.1 uses 0.1, 0.075, 0.05, 0.025', () => {
    const rates = [0, 1, 2, 3].map((epoch) => polynomialDecay(0.1, epoch, 4));
    expect(rates).toEqual([0.1, expect.closeTo(0.075, 12), expect.closeTo(0.05, 12), expect.closeTo(0.025, 12)]);
  });

  it('applies the power', () => {
    // (1 - 1/4)^2 = 0.5625; (1 - 2/4)^2 = 0.25
    expect(polynomialDecay(0.2, 1, 4, 2)).toBeCloseTo(0.2 * 0.5625, 12);
    expect(polynomialDecay(0.2, 2, 4, 2)).toBeCloseTo(0.05, 12);
    expect(polynomialDecay(0.2, 0, 4, 2)).toBe(0.2);
  });

  it('matches the tutorial’s 50-epoch run at its ends', () => {
    expect(polynomialDecay(0.1, 0, 50)).toBe(0.1);
    expect(polynomialDecay(0.1, 49, 50)).toBeCloseTo(0.002, 12);
  });

  it('rejects epochs outside the run', () => {
    expect(() => polynomialDecay(0.1, 4, 4)).toThrow(RangeError);
    expect(() => polynomialDecay(0.1, -1, 4)).toThrow(RangeError);
    expect(() => polynomialDecay(0.1, 0, 0)).toThrow(RangeError);
  });
});
