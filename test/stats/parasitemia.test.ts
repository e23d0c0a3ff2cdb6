import { describe, expect, it } from 'vitest';
import { needsReview, summariseSlide } from '../../src/stats/parasitemia.js';

/** n cells of which `k` have P(positive) 0.9 and the rest 0.1. */
const slide = (k: number, n: number): number[] => Array.from({ length: n }, (_, i) => (i < k ? 0.9 : 0.1));

describe('summariseSlide', () => {
  it('counts parasitized cells at the threshold, a tie counting as parasitized, and those near it', () => {
    const summary = summariseSlide([0.9, 0.5, 0.49, 0.1, 0.55], 0.5, 0.1);
    expect(summary.cells).toBe(5);
    expect(summary.parasitized).toBe(3);
    expect(summary.parasitemia).toBeCloseTo(0.6, 12);
    expect(summary.toReview).toBe(3); // 0.5, 0.49, 0.55
    expect(summary.threshold).toBe(0.5);
    expect(summary.reviewMargin).toBe(0.1);
  });

  // Reference intervals: Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score).
  it.each([
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ])('gives the Wilson 95%% interval of %i parasitized in %i cells', (k, n, lower, upper) => {
    const { parasitemia, ci95 } = summariseSlide(slide(k, n), 0.5);
    expect(parasitemia).toBeCloseTo(k / n, 12);
    expect(ci95?.lower).toBeCloseTo(lower, 4);
    expect(ci95?.upper).toBeCloseTo(upper, 4);
  });

  it('has no parasitemia and no interval for an empty slide', () => {
    const summary = summariseSlide([], 0.5);
    expect(summary).toMatchObject({ cells: 0, parasitized: 0, parasitemia: null, ci95: null, toReview: 0 });
  });

  it('refuses a threshold outside [0, 1] and non-finite probabilities', () => {
    expect(() => summariseSlide([0.5], 1.5)).toThrow(/threshold 1.5/);
    expect(() => summariseSlide([0.5], Number.NaN)).toThrow(/threshold/);
    expect(() => summariseSlide([0.5, Number.NaN], 0.5)).toThrow(/cell 1 .*non-finite/);
  });
});

describe('needsReview', () => {
  it('flags probabilities strictly within the margin of the threshold', () => {
    expect(needsReview(0.45, 0.5, 0.1)).toBe(true);
    expect(needsReview(0.5, 0.5, 0.1)).toBe(true);
    expect(needsReview(0.35, 0.5, 0.1)).toBe(false);
    expect(needsReview(0.95, 0.9, 0.1)).toBe(true);
    expect(needsReview(0.75, 0.9)).toBe(false); // default margin 0.1
  });
});
