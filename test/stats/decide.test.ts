import { describe, expect, it } from 'vitest';
import { decide } from '../../src/stats/decide.js';
import { predictAtThreshold, rocPointAt } from '../../src/stats/metrics.js';
import { summariseSlide } from '../../src/stats/parasitemia.js';

describe('decide', () => {
  it('calls a cell positive from the threshold up, a tie included', () => {
    expect(decide(0.5, 0.5)).toBe(true);
    expect(decide(0.7, 0.5)).toBe(true);
    expect(decide(0.49999, 0.5)).toBe(false);
    expect(decide(0, 0)).toBe(true);
    expect(decide(1, 1)).toBe(true);
    expect(decide(0.99, 1)).toBe(false);
  });

  it('is the rule evaluate, predict --summary and the ROC operating point apply', () => {
    const p = [0, 0.2, 0.3, 0.3000001, 0.7, 1];
    const isPositive = [true, false, true, false, true, false];
    for (const threshold of [0, 0.3, 0.5, 1]) {
      const evaluateSays = predictAtThreshold(p, threshold, 0);
      expect(p.map((value) => decide(value, threshold))).toEqual(Array.from(evaluateSays, (label) => label === 0));
      expect(summariseSlide(p, threshold).parasitized).toBe(evaluateSays.filter((label) => label === 0).length);
      const flagged = p.map((value) => decide(value, threshold));
      const point = rocPointAt(p, isPositive, threshold)!;
      expect(point.tpr).toBe(flagged.filter((f, i) => f && isPositive[i]).length / 3);
      expect(point.fpr).toBe(flagged.filter((f, i) => f && !isPositive[i]).length / 3);
    }
  });
});
