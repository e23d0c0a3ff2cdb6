import { describe, expect, it } from 'vitest';
import { learningRateAt, polynomialDecay } from '../../src/model/schedule.js';

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

describe('learningRateAt', () => {
  const base = { lr: 0.1, epochs: 4, schedule: 'linear', warmup: 0 } as const;

  it('without warm-up, linear is the tutorial’s per-epoch decay at every step of an epoch', () => {
    for (let epoch = 0; epoch < 4; epoch++) {
      for (const done of [0.25, 1]) {
        expect(learningRateAt(base, epoch, done)).toBeCloseTo(polynomialDecay(0.1, epoch, 4), 12);
      }
    }
  });

  it('warms up linearly per step, then follows the schedule', () => {
    const warm = { ...base, warmup: 1 };
    expect(learningRateAt(warm, 0, 0.25)).toBeCloseTo(0.025, 12);
    expect(learningRateAt(warm, 0, 1)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(warm, 1, 0.5)).toBeCloseTo(0.075, 12);
  });

  it('cosine falls by half a cosine per step after the warm-up: full rate, half way, zero at the end', () => {
    const cosine = { ...base, schedule: 'cosine' as const, warmup: 1 };
    expect(learningRateAt(cosine, 0, 1)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(cosine, 2, 0.5)).toBeCloseTo(0.05, 12); // 2.5 of 4 epochs: half of the 3 after warm-up
    expect(learningRateAt(cosine, 3, 1)).toBeCloseTo(0, 12);
    expect(learningRateAt({ ...base, schedule: 'cosine' }, 0, 0.5)).toBeLessThan(0.1);
  });
});
