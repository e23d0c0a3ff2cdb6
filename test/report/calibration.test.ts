import { describe, expect, it } from 'vitest';
import { formatEce, formatTemperatureFit } from '../../src/report/calibration.js';

describe('calibration in words', () => {
  it('names the binning next to the ECE', () => {
    expect(formatEce(0.04123)).toBe("0.0412 (15 bins on the top class's probability)");
  });

  it('says whether the fitted temperature was kept', () => {
    const fit = { temperature: 1.53, images: 400, eceBefore: 0.05, eceAfter: 0.012 };
    expect(formatTemperatureFit({ ...fit, applied: true }, 'validation')).toBe(
      "temperature T = 1.53 fitted on validation (400 images), saved in metadata.json: ECE 0.0500 -> 0.0120 (15 bins on the top class's probability)",
    );
    expect(formatTemperatureFit({ ...fit, temperature: 10, applied: false }, 'validation')).toBe(
      "temperature: the fit on validation (400 images) ran to the end of its range (T = 10); kept T = 1, ECE 0.0500 (15 bins on the top class's probability)",
    );
  });
});
