import { describe, expect, it } from 'vitest';
import { CALIBRATION_BINS, calibrationOf } from '../../src/stats/calibration.js';

describe('calibrationOf', () => {
  it('computes the ECE of a hand-worked case with 15 bins on the top class', () => {
    // Top-class confidence, correct?: 0.9 yes (bin 13), 0.82 no (bin 12), 0.7 yes (bin 10), 0.55 no (bin 8),
    // 0.95 yes and 0.97 no (both bin 14: confidence 0.96, accuracy 0.5).
    const probabilities = Float32Array.from([0.9, 0.1, 0.82, 0.18, 0.3, 0.7, 0.55, 0.45, 0.95, 0.05, 0.97, 0.03]);
    const labels = Int32Array.from([0, 1, 1, 1, 0, 1]);
    const { ece, bins, images } = calibrationOf(probabilities, labels, 2);
    // (|1 - 0.9| + |0 - 0.82| + |1 - 0.7| + |0 - 0.55| + 2 |0.5 - 0.96|) / 6
    expect(ece).toBeCloseTo(2.69 / 6, 6);
    expect(images).toBe(6);
    expect(bins).toHaveLength(CALIBRATION_BINS);
    expect(bins.map((b) => b.count)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 2]);
    expect(bins[14].confidence).toBeCloseTo(0.96, 6);
    expect(bins[14].accuracy).toBe(0.5);
    expect(bins[0].accuracy).toBeNull();
    expect(bins[3].lower).toBeCloseTo(0.2, 12);
    expect(bins[3].upper).toBeCloseTo(4 / 15, 12);
  });

  it("is 0 when each bin's accuracy equals its confidence, and puts confidence 1 in the last bin", () => {
    // Four images at confidence 0.75, three right: calibrated.
    const probabilities = Float32Array.from([0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.25, 0.75]);
    expect(calibrationOf(probabilities, Int32Array.from([0, 0, 0, 0]), 2).ece).toBeCloseTo(0, 6);
    const certain = calibrationOf(Float32Array.from([0, 0, 0, 0, 1]), Int32Array.from([4]), 5);
    expect(certain.bins[CALIBRATION_BINS - 1].count).toBe(1);
    expect(certain.ece).toBe(0);
  });
});
