import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { applyTemperature, fitTemperature, temperatureNll, TEMPERATURE_RANGE } from '../../src/model/temperature.js';
import { calibrationOf } from '../../src/stats/calibration.js';

/** A standard normal draw (Box-Muller). */
function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/**
 * A model whose miscalibration is known: true logit differences z ~ N(0, 2^2), labels drawn from the calibrated
 * P(class 0) = sigmoid(z), and the "model" reporting sigmoid(sharpen * z): overconfident by a temperature of
 * `sharpen`, which the fit must find.
 */
function overconfident(n: number, sharpen: number, seed: string): { probabilities: Float32Array; labels: Int32Array } {
  const random = seedrandom(seed);
  const probabilities = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const z = 2 * normal(random);
    labels[i] = random() < 1 / (1 + Math.exp(-z)) ? 0 : 1;
    const p0 = 1 / (1 + Math.exp(-sharpen * z));
    probabilities[2 * i] = p0;
    probabilities[2 * i + 1] = 1 - p0;
  }
  return { probabilities, labels };
}

describe('applyTemperature', () => {
  it('is softmax(log p / T): [0.8, 0.2] at T = 2 becomes [2/3, 1/3], at T = 0.5 [16/17, 1/17]', () => {
    const p = Float32Array.from([0.8, 0.2, 0.5, 0.5]);
    const soft = applyTemperature(p, 2, 2);
    expect(soft[0]).toBeCloseTo(2 / 3, 6);
    expect(soft[1]).toBeCloseTo(1 / 3, 6);
    expect(soft[2]).toBeCloseTo(0.5, 6);
    const sharp = applyTemperature(p, 2, 0.5);
    expect(sharp[0]).toBeCloseTo(16 / 17, 6);
    expect(sharp[1]).toBeCloseTo(1 / 17, 6);
  });

  it('leaves the probabilities untouched at T = 1 and keeps a zero probability at zero', () => {
    const p = Float32Array.from([0.3, 0.7]);
    expect(applyTemperature(p, 2, 1)).toBe(p);
    expect(Array.from(applyTemperature(Float32Array.from([1, 0, 0]), 3, 4))).toEqual([1, 0, 0]);
  });
});

describe('fitTemperature', () => {
  it('recovers a known overconfidence (T = 3) within 10%, and the calibration error drops', () => {
    const { probabilities, labels } = overconfident(20_000, 3, 'calibration');
    const fit = fitTemperature(probabilities, labels, 2);
    expect(fit.temperature).toBeGreaterThan(2.7);
    expect(fit.temperature).toBeLessThan(3.3);
    expect(fit.atBound).toBe(false);
    expect(fit.nllAfter).toBeLessThan(fit.nllBefore);
    const before = calibrationOf(probabilities, labels, 2).ece;
    const after = calibrationOf(applyTemperature(probabilities, 2, fit.temperature), labels, 2).ece;
    expect(before).toBeGreaterThan(0.1);
    expect(after).toBeLessThan(0.02);
  });

  it('finds T near 1 for calibrated probabilities and T < 1 for underconfident ones', () => {
    const calibrated = overconfident(20_000, 1, 'calibrated');
    expect(fitTemperature(calibrated.probabilities, calibrated.labels, 2).temperature).toBeCloseTo(1, 1);
    const timid = overconfident(20_000, 0.5, 'timid');
    const fit = fitTemperature(timid.probabilities, timid.labels, 2);
    expect(fit.temperature).toBeGreaterThan(0.45);
    expect(fit.temperature).toBeLessThan(0.55);
  });

  it('minimises the NLL: nearby temperatures do no better', () => {
    const { probabilities, labels } = overconfident(2_000, 2, 'minimum');
    const { temperature, nllAfter } = fitTemperature(probabilities, labels, 2);
    for (const factor of [0.97, 1.03])
      expect(temperatureNll(probabilities, labels, 2, temperature * factor)).toBeGreaterThan(nllAfter);
  });

  it('runs to the end of its range on a split it separates perfectly, and says so', () => {
    const probabilities = Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.7, 0.3]);
    const fit = fitTemperature(probabilities, Int32Array.from([0, 1, 0]), 2);
    expect(fit.atBound).toBe(true);
    expect(fit.temperature).toBeCloseTo(TEMPERATURE_RANGE[0], 3);
  });

  it('gives a finite loss when the true class has probability 0', () => {
    expect(Number.isFinite(temperatureNll(Float32Array.from([1, 0]), Int32Array.from([1]), 2, 1))).toBe(true);
  });
});
