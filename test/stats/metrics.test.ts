import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import {
  argmaxRows,
  binaryCounts,
  classificationMetrics,
  confusionMatrix,
  matthewsCorrelation,
  metricsFromConfusion,
  positiveMask,
  positiveProbabilities,
  predictAtThreshold,
  rocAuc,
  rocCurve,
  rocPointAt,
  screeningMetrics,
  thresholdForSensitivity,
  trapezoidAuc,
  wilsonInterval,
} from '../../src/stats/metrics.js';

// Three classes; C is never predicted (precision 0/0) and has one missed image.
//            pred A  pred B  pred C
//   true A      3       1       0     support 4
//   true B      1       2       0     support 3
//   true C      1       0       0     support 1
const Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2];
const Y_PRED = [0, 0, 0, 1, 0, 1, 1, 0];
const LABELS = ['A', 'B', 'C'];

describe('confusion matrix and per-class scores', () => {
  it('counts true class i predicted as j in confusion[i][j]', () => {
    expect(confusionMatrix(Y_TRUE, Y_PRED, 3)).toEqual([
      [3, 1, 0],
      [1, 2, 0],
      [1, 0, 0],
    ]);
  });

  it('computes precision, recall, f1 and support per class', () => {
    const m = classificationMetrics(Y_TRUE, Y_PRED, LABELS);
    const [a, b, c] = m.perClass;
    expect(a.precision).toBeCloseTo(3 / 5, 12);
    expect(a.recall).toBeCloseTo(3 / 4, 12);
    expect(a.f1).toBeCloseTo(2 / 3, 12); // 2 * 0.6 * 0.75 / 1.35
    expect(a.support).toBe(4);
    expect(b.precision).toBeCloseTo(2 / 3, 12);
    expect(b.recall).toBeCloseTo(2 / 3, 12);
    expect(b.f1).toBeCloseTo(2 / 3, 12);
    expect(b.support).toBe(3);
    // Never predicted: precision is 0/0 -> 0 (sklearn's default), and so is F1; no NaN anywhere.
    expect(c).toEqual({ label: 'C', precision: 0, recall: 0, f1: 0, support: 1 });
    expect(m.accuracy).toBe(5 / 8);
    expect(m.total).toBe(8);
  });

  it('averages like sklearn: macro = plain mean, weighted = support-weighted mean', () => {
    const m = classificationMetrics(Y_TRUE, Y_PRED, LABELS);
    expect(m.macro.precision).toBeCloseTo((0.6 + 2 / 3 + 0) / 3, 12);
    expect(m.macro.recall).toBeCloseTo((0.75 + 2 / 3 + 0) / 3, 12);
    expect(m.macro.f1).toBeCloseTo((2 / 3 + 2 / 3 + 0) / 3, 12);
    expect(m.weighted.precision).toBeCloseTo((0.6 * 4 + (2 / 3) * 3) / 8, 12); // 0.55
    expect(m.weighted.recall).toBeCloseTo(5 / 8, 12);
    expect(m.weighted.f1).toBeCloseTo(((2 / 3) * 4 + (2 / 3) * 3) / 8, 12);
    expect(m.macro.support).toBe(8);
    expect(m.weighted.support).toBe(8);
  });

  it('gives the same result from probabilities (argmax) as from labels', () => {
    const probs = new Float32Array(Y_PRED.flatMap((p) => [0, 1, 2].map((c) => (c === p ? 0.7 : 0.15))));
    expect(classificationMetrics(Y_TRUE, argmaxRows(probs, 3), LABELS)).toEqual(
      classificationMetrics(Y_TRUE, Y_PRED, LABELS),
    );
  });

  it('treats a class with zero support as 0 everywhere, and keeps it in the macro average', () => {
    const m = metricsFromConfusion(
      [
        [2, 0],
        [0, 0],
      ],
      ['P', 'U'],
    );
    expect(m.perClass[1]).toEqual({ label: 'U', precision: 0, recall: 0, f1: 0, support: 0 });
    expect(m.macro.recall).toBe(0.5);
    expect(m.weighted.recall).toBe(1);
  });

  it('returns zeros, not NaN, for n = 0', () => {
    const m = classificationMetrics([], [], ['P', 'U']);
    expect(m.accuracy).toBe(0);
    expect(m.total).toBe(0);
    expect(m.macro).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(m.weighted).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
  });

  it('rejects out-of-range labels and mismatched lengths', () => {
    expect(() => confusionMatrix([0, 2], [0, 1], 2)).toThrow(RangeError);
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(RangeError);
    expect(() => confusionMatrix([0.5], [0], 2)).toThrow(RangeError);
  });
});

describe('argmax and positive-class probabilities', () => {
  it('takes the row maximum, first class on ties like np.argmax', () => {
    expect(Array.from(argmaxRows(new Float32Array([0.2, 0.8, 0.5, 0.5, 0.9, 0.1]), 2))).toEqual([1, 0, 0]);
  });

  it('refuses NaN probabilities instead of reporting on them', () => {
    expect(() => argmaxRows(new Float32Array([0.2, Number.NaN]), 2)).toThrow(UserError);
  });

  it('rejects a matrix whose length is not n x classes', () => {
    expect(() => argmaxRows(new Float32Array(5), 2)).toThrow(RangeError);
  });

  it('extracts the positive column', () => {
    const p = positiveProbabilities(new Float32Array([0.25, 0.75, 0.5, 0.5, 1, 0]), 2, 1);
    expect(Array.from(p)).toEqual([0.75, 0.5, 0]);
  });
});

describe('binary screening metrics (positive = class 0)', () => {
  // tp 6, fn 2, fp 1, tn 11
  const yTrue = [...Array<number>(8).fill(0), ...Array<number>(12).fill(1)];
  const yPred = [0, 0, 0, 0, 0, 0, 1, 1, 0, ...Array<number>(11).fill(1)];

  it('counts the 2x2 table', () => {
    expect(binaryCounts(yTrue, yPred, 0)).toEqual({ tp: 6, fn: 2, fp: 1, tn: 11 });
  });

  it('computes sensitivity, specificity, predictive values and accuracy', () => {
    const s = screeningMetrics(yTrue, yPred, 0);
    expect(s.n).toBe(20);
    expect(s.sensitivity).toBe(6 / 8);
    expect(s.specificity).toBe(11 / 12);
    expect(s.ppv).toBe(6 / 7);
    expect(s.npv).toBe(11 / 13);
    expect(s.accuracy).toBe(17 / 20);
    expect(s.balancedAccuracy).toBe((6 / 8 + 11 / 12) / 2);
    expect(s.auc).toBeNull(); // no probabilities given
  });

  it('computes MCC by hand: (6*11 - 1*2) / sqrt(7*8*12*13)', () => {
    expect(screeningMetrics(yTrue, yPred, 0).mcc).toBeCloseTo(64 / Math.sqrt(8736), 12); // 0.684737
    expect(matthewsCorrelation({ tp: 5, fp: 0, tn: 5, fn: 0 })).toBe(1);
    expect(matthewsCorrelation({ tp: 0, fp: 5, tn: 0, fn: 5 })).toBe(-1);
    // An empty margin (nothing predicted negative) makes MCC 0/0; sklearn returns 0.
    expect(matthewsCorrelation({ tp: 3, fp: 2, tn: 0, fn: 0 })).toBe(0);
  });

  it('gives Wilson 95% intervals matching hand computation', () => {
    const s = screeningMetrics(yTrue, yPred, 0);
    // 6/8: centre (0.75 + z^2/16) / (1 + z^2/8), half-width z/(1 + z^2/8) * sqrt(0.75*0.25/8 + z^2/256)
    expect(s.ci95.sensitivity?.lower).toBeCloseTo(0.40928, 4);
    expect(s.ci95.sensitivity?.upper).toBeCloseTo(0.92852, 4);
    expect(s.ci95.specificity?.lower).toBeCloseTo(0.64612, 4); // 11/12
    expect(s.ci95.specificity?.upper).toBeCloseTo(0.98513, 4);
    expect(s.ci95.accuracy?.lower).toBeCloseTo(0.63958, 4); // 17/20
    expect(s.ci95.accuracy?.upper).toBeCloseTo(0.94763, 4);
  });

  it('reports undefined rates as null when the data hold no positives, and everything null for n = 0', () => {
    const s = screeningMetrics([1, 1, 1], [1, 0, 1], 0, [0.2, 0.7, 0.1]);
    expect(s.sensitivity).toBeNull();
    expect(s.ci95.sensitivity).toBeNull();
    expect(s.specificity).toBe(2 / 3);
    expect(s.balancedAccuracy).toBeNull();
    expect(s.auc).toBeNull();
    expect(s.mcc).toBe(0);

    const empty = screeningMetrics([], [], 0, []);
    expect(empty).toMatchObject({
      n: 0,
      accuracy: null,
      sensitivity: null,
      specificity: null,
      ppv: null,
      npv: null,
      mcc: 0,
      auc: null,
    });
    expect(empty.ci95).toEqual({ accuracy: null, sensitivity: null, specificity: null });
  });

  it('adds AUC from the positive-class probabilities', () => {
    // positives (class 0) score 0.9 and 0.4, negatives 0.5 and 0.1: 3 of 4 pairs ordered correctly.
    const s = screeningMetrics([0, 0, 1, 1], [0, 1, 0, 1], 0, [0.9, 0.4, 0.5, 0.1]);
    expect(s.auc).toBe(0.75);
  });
});

describe('Wilson interval', () => {
  it('matches published values for 8/10 (0.4902, 0.9433)', () => {
    const ci = wilsonInterval(8, 10);
    expect(ci?.lower).toBeCloseTo(0.4902, 4);
    expect(ci?.upper).toBeCloseTo(0.9433, 4);
  });

  it('handles 0/n and n/n: the closed end is exact, the other is z^2/(n+z^2) away', () => {
    const z2 = 1.959964 ** 2;
    const none = wilsonInterval(0, 10);
    expect(none?.lower).toBe(0);
    expect(none?.upper).toBeCloseTo(z2 / (10 + z2), 12); // 0.27753
    const all = wilsonInterval(10, 10);
    expect(all?.lower).toBeCloseTo(10 / (10 + z2), 12); // 0.72247
    expect(all?.upper).toBeCloseTo(1, 12);
  });

  it('is null for n = 0 and rejects impossible counts', () => {
    expect(wilsonInterval(0, 0)).toBeNull();
    expect(() => wilsonInterval(11, 10)).toThrow(RangeError);
  });
});

describe('ROC AUC and curve', () => {
  it('scores the sklearn example (0.75)', () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBe(0.75);
  });

  it('counts ties between a positive and a negative as 1/2, exactly', () => {
    // Each positive (0.5) ties the negative 0.5 (1/2) and beats 0.2 (1): (1.5 + 1.5) / 4.
    expect(rocAuc([0.5, 0.5, 0.5, 0.2], [true, false, true, false])).toBe(0.75);
    expect(rocAuc([0.3, 0.3, 0.3], [true, false, false])).toBe(0.5);
    expect(rocAuc([0.2, 0.9], [true, false])).toBe(0);
  });

  it('is null when a class is absent (AUC undefined) and for n = 0', () => {
    expect(rocAuc([0.1, 0.9], [false, false])).toBeNull();
    expect(rocAuc([0.1, 0.9], [true, true])).toBeNull();
    expect(rocAuc([], [])).toBeNull();
    expect(rocCurve([0.1, 0.9], [true, true])).toBeNull();
  });

  it('lists one point per distinct threshold, strictest first', () => {
    expect(rocCurve([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toEqual([
      { fpr: 0, tpr: 0, threshold: Number.POSITIVE_INFINITY },
      { fpr: 0, tpr: 0.5, threshold: 0.8 },
      { fpr: 0.5, tpr: 0.5, threshold: 0.4 },
      { fpr: 0.5, tpr: 1, threshold: 0.35 },
      { fpr: 1, tpr: 1, threshold: 0.1 },
    ]);
    // Tied scores collapse into one diagonal step.
    expect(rocCurve([0.5, 0.5, 0.5, 0.2], [true, false, true, false])).toEqual([
      { fpr: 0, tpr: 0, threshold: Number.POSITIVE_INFINITY },
      { fpr: 0.5, tpr: 1, threshold: 0.5 },
      { fpr: 1, tpr: 1, threshold: 0.2 },
    ]);
  });

  it('has a trapezoid area equal to the Mann-Whitney AUC, ties included', () => {
    const scores = [0.9, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.3, 0.2, 0.2];
    const positives = [true, true, false, true, false, true, false, true, false, false];
    // Positives 0.9 0.8 0.7 0.6 0.3 against negatives 0.8 0.6 0.6 0.2 0.2, wins + ties/2:
    // 0.9 -> 5, 0.8 -> 4 + 0.5, 0.7 -> 4, 0.6 -> 2 + 2 * 0.5, 0.3 -> 2; sum 18.5 of 25 pairs.
    expect(rocAuc(scores, positives)).toBe(18.5 / 25);
    expect(trapezoidAuc(rocCurve(scores, positives) ?? [])).toBeCloseTo(18.5 / 25, 12);
  });
});

describe('thresholds', () => {
  // Positives score 0.9, 0.8, 0.6, 0.3; negatives 0.7, 0.2, 0.1.
  const scores = [0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1];
  const positives = [true, true, true, true, false, false, false];

  it('predicts positive when p >= threshold (equality counts)', () => {
    expect(Array.from(predictAtThreshold(scores, 0.6, 0))).toEqual([0, 0, 0, 1, 0, 1, 1]);
    expect(Array.from(predictAtThreshold([0.5, 0.49], 0.5, 1, 0))).toEqual([1, 0]);
  });

  it('picks the largest threshold that reaches the target sensitivity', () => {
    expect(thresholdForSensitivity(scores, positives, 0.75)).toBe(0.6); // 3 of 4; at 0.61 only 2 of 4
    expect(thresholdForSensitivity(scores, positives, 0.5)).toBe(0.8);
    expect(thresholdForSensitivity(scores, positives, 0.76)).toBe(0.3); // needs all 4
    expect(thresholdForSensitivity(scores, positives, 1)).toBe(0.3);
    expect(thresholdForSensitivity(scores, positives, 0.25)).toBe(0.9);
  });

  it('does not overshoot on floating-point rounding (0.7 * 10 = 7.000000000000001)', () => {
    const tenPositives = Array.from({ length: 10 }, (_, i) => (i + 1) / 10);
    // Needs 7 of 10: the 7th highest score is 0.4.
    expect(thresholdForSensitivity(tenPositives, Array<boolean>(10).fill(true), 0.7)).toBe(0.4);
  });

  it('handles ties at the threshold', () => {
    expect(thresholdForSensitivity([0.9, 0.6, 0.6, 0.3], [true, true, true, true], 0.5)).toBe(0.6);
  });

  it('achieves the target at the chosen threshold', () => {
    const t = thresholdForSensitivity(scores, positives, 0.75);
    const point = rocPointAt(scores, positives, t ?? Number.NaN);
    expect(point).toEqual({ threshold: 0.6, tpr: 0.75, fpr: 1 / 3 });
    expect(rocPointAt(scores, positives, 0.61)?.tpr).toBe(0.5);
  });

  it('is null without positives and rejects targets outside (0, 1]', () => {
    expect(thresholdForSensitivity([0.2, 0.3], [false, false], 0.9)).toBeNull();
    expect(thresholdForSensitivity([], [], 0.9)).toBeNull();
    expect(() => thresholdForSensitivity(scores, positives, 0)).toThrow(RangeError);
    expect(() => thresholdForSensitivity(scores, positives, 1.1)).toThrow(RangeError);
  });

  it('builds the positive mask from class indices', () => {
    expect(positiveMask([0, 1, 1, 0], 0)).toEqual([true, false, false, true]);
  });
});
