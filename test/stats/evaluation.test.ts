import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import type { LabelledProbabilities } from '../../src/stats/labelled-probabilities.js';
import {
  decidedClasses,
  evaluatePredictions,
  readableThreshold,
  rocData,
  selectThreshold,
} from '../../src/stats/evaluation.js';
import {
  CLASSES,
  noisyCells as cells,
  noisyLabels as labels,
  noisyScores as scores,
  patients,
  predictions,
  SICK as sick,
  sickCells,
  validation,
} from '../support/evaluations.js';

describe('selectThreshold', () => {
  it('takes the largest threshold that reaches the target sensitivity (hand-computed)', () => {
    // 0.6 needs 3 of 5 positives: the 3rd highest positive score, 0.6.
    const at60 = selectThreshold(validation, CLASSES, 0.6, 'validation');
    expect(at60).toEqual({
      split: 'validation',
      targetSensitivity: 0.6,
      threshold: 0.6,
      sensitivity: 0.6,
      positivesFlagged: 3,
      positives: 5,
    });
    // 0.7 needs 4 of 5 (3.5 rounds up): 0.35, sensitivity 0.8. The model's 0.35 is a float32 just below 0.35
    // (0.3499999940...), so the threshold is the shortest decimal at or below it: 0.34999999, not 0.35.
    const at70 = selectThreshold(validation, CLASSES, 0.7, 'validation');
    expect(at70.threshold).toBe(0.34999999);
    expect(at70.sensitivity).toBe(0.8);
    expect(selectThreshold(validation, CLASSES, 1, 'validation').threshold).toBe(0.2);
  });

  it('a threshold chosen on one split reaches the target there and is then applied as is', () => {
    const { threshold } = selectThreshold(validation, CLASSES, 0.8, 'validation');
    const onValidation = evaluatePredictions(validation, CLASSES, threshold).screening!;
    expect(onValidation.sensitivity).toBeGreaterThanOrEqual(0.8);
    expect(onValidation.counts).toEqual({ tp: 4, fn: 1, fp: 1, tn: 3 }); // 0.7 is the one false positive
    const test = predictions([0.5, 0.34, 0.36, 0.4, 0.2], [0, 0, 1, 1, 1]);
    expect(evaluatePredictions(test, CLASSES, threshold).screening!.counts).toEqual({ tp: 1, fn: 1, fp: 2, tn: 1 });
  });

  it('is a one-line error without positives or with more than two classes', () => {
    const negativesOnly = predictions([0.2, 0.9], [1, 1]);
    expect(() => selectThreshold(negativesOnly, CLASSES, 0.9, 'validation')).toThrow(UserError);
    expect(() => selectThreshold(negativesOnly, CLASSES, 0.9, 'validation')).toThrow(
      /validation split holds no Parasitized images/,
    );
    const three: LabelledProbabilities = {
      probabilities: new Float32Array([0.2, 0.3, 0.5]),
      labels: Int32Array.from([2]),
      classes: 3,
    };
    expect(() => selectThreshold(three, { classNames: ['a', 'b', 'c'] }, 0.9, 'validation')).toThrow(
      /needs a two-class model/,
    );
  });
});

describe('readableThreshold', () => {
  it('shortens a float32 threshold without changing any float32 decision', () => {
    const scores = new Float32Array([0.41234567, 0.4123456, 0.41234568, 0.7, 0.1]);
    for (const exact of scores) {
      const readable = readableThreshold(exact);
      expect(readable).toBeLessThanOrEqual(exact);
      expect(String(readable).length).toBeLessThan(String(exact).length + 1);
      for (const p of scores) expect(p >= readable, `${p} vs ${readable}`).toBe(p >= exact);
      // The float32 just below must stay below.
      const below = new Float32Array([exact]);
      new Uint32Array(below.buffer)[0] -= 1;
      expect(below[0] >= readable).toBe(false);
    }
    expect(readableThreshold(Math.fround(0.6))).toBe(0.6); // float32 0.6 is just above 0.6
    expect(readableThreshold(Math.fround(0.7))).toBe(0.69999998); // float32 0.7 is just below 0.7
    expect(readableThreshold(0)).toBe(0);
    expect(readableThreshold(0.123456789012345)).toBe(0.123456789012345); // not a float32: left exact
  });
});

describe('rocData', () => {
  it('gives the curve, the AUC and the operating point of the threshold', () => {
    const roc = rocData(validation, CLASSES, 0.34);
    expect(roc.curve[0]).toEqual({ fpr: 0, tpr: 0, threshold: Number.POSITIVE_INFINITY });
    expect(roc.curve.at(-1)).toMatchObject({ fpr: 1, tpr: 1 });
    // Pairs (positive above negative): 0.9 and 0.8 beat all 4; 0.6 and 0.35 beat 3; 0.2 beats 2 -> 16 of 20.
    expect(roc.auc).toBeCloseTo(16 / 20, 10);
    expect(roc.operatingPoint).toEqual({ fpr: 0.25, tpr: 0.8, threshold: 0.34 });
    const oneClass = rocData(predictions([0.2, 0.9], [1, 1]), CLASSES, 0.5);
    expect(oneClass).toEqual({ curve: [], auc: null, operatingPoint: undefined });
  });
});

describe('balanced accuracy and the bootstrap intervals', () => {
  it('adds the balanced accuracy and resamples patients when their ids are given', () => {
    const screening = evaluatePredictions(cells, CLASSES, 0.5, { clusters: patients }).screening!;
    expect(screening.balancedAccuracy).toBeCloseTo((screening.sensitivity! + screening.specificity!) / 2, 12);
    expect(screening.balancedAccuracy).toBeLessThan(1); // the noise makes mistakes: the test is not trivial
    expect(screening.ci95Method).toBe('patient bootstrap (12 patients, 2000 replicates)');
    for (const key of ['balancedAccuracy', 'auc'] as const) {
      const interval = screening.ci95[key]!;
      expect(interval.lower, key).toBeLessThanOrEqual(screening[key]!);
      expect(interval.upper, key).toBeGreaterThanOrEqual(screening[key]!);
      expect(interval.upper, key).toBeGreaterThan(interval.lower);
    }
    // The Wilson intervals are still there.
    expect(screening.ci95.sensitivity).not.toBeNull();
  });

  it('falls back to a cell bootstrap without ids, and says which cells had none', () => {
    const byCell = evaluatePredictions(cells, CLASSES, 0.5).screening!;
    expect(byCell.ci95Method).toBe('cell bootstrap (120 cells, 2000 replicates)');
    expect(byCell.balancedAccuracy).toBe(
      evaluatePredictions(cells, CLASSES, 0.5, { clusters: patients }).screening!.balancedAccuracy,
    );
    const someUnknown = patients.map((id, i) => (i < 5 ? undefined : id));
    expect(evaluatePredictions(cells, CLASSES, 0.5, { clusters: someUnknown }).screening!.ci95Method).toBe(
      'patient bootstrap (12 patients and 5 cells without a patient id, 2000 replicates)',
    );
  });

  it('has no interval when too many replicates lack a class, and no balanced accuracy without positives', () => {
    // The one positive patient is missed by about a third of the replicates: no interval.
    const onePositivePatient = predictions(
      scores,
      labels.map((_, i) => (i < 10 ? 0 : 1)),
    );
    const screening = evaluatePredictions(onePositivePatient, CLASSES, 0.5, { clusters: patients }).screening!;
    expect(screening.ci95.balancedAccuracy).toBeNull();
    expect(screening.ci95.auc).toBeNull();
    const negativesOnly = evaluatePredictions(predictions([0.2, 0.9], [1, 1]), CLASSES, 0.5).screening!;
    expect(negativesOnly.balancedAccuracy).toBeNull();
  });
});

describe('the positive class', () => {
  it("is the model's, named, not the first class: sensitivity and the decisions are about it", () => {
    const screening = evaluatePredictions(sickCells, sick, 0.5).screening!;
    // Taking the first class (Healthy) as positive would give 0.75 and 2/3 instead.
    expect(screening.sensitivity).toBeCloseTo(2 / 3, 10);
    expect(screening.specificity).toBe(0.75);
    expect(screening.counts).toEqual({ tp: 2, fn: 1, fp: 1, tn: 3 });
    expect(Array.from(decidedClasses(sickCells, sick, 0.5))).toEqual([1, 1, 0, 1, 0, 0, 0]);
    expect(selectThreshold(sickCells, sick, 1, 'validation')).toMatchObject({ threshold: 0.3, positives: 3 });
    expect(rocData(sickCells, sick, 0.5).operatingPoint).toEqual({ fpr: 0.25, tpr: 2 / 3, threshold: 0.5 });
  });
});

describe('decidedClasses', () => {
  it('decides two classes by the threshold on P(Parasitized) (a tie is positive), more classes by argmax', () => {
    const two = predictions([0.9, 0.3, 0.29, 0.1], [0, 0, 1, 1]);
    expect(Array.from(decidedClasses(two, CLASSES, 0.3))).toEqual([0, 0, 1, 1]);
    expect(Array.from(decidedClasses(two, CLASSES, 0.5))).toEqual([0, 1, 1, 1]);
    // Parasitized second: the threshold applies to the second column (P = 0.1, 0.7, 0.71, 0.9).
    expect(
      Array.from(
        decidedClasses(two, { classNames: ['Uninfected', 'Parasitized'], positiveClass: 'Parasitized' }, 0.75),
      ),
    ).toEqual([0, 0, 0, 1]);
    const three = {
      probabilities: Float32Array.from([0.2, 0.5, 0.3, 0.6, 0.1, 0.3]),
      labels: Int32Array.of(1, 2),
      classes: 3,
    };
    expect(Array.from(decidedClasses(three, { classNames: ['a', 'b', 'c'] }, 0.5))).toEqual([1, 0]);
  });
});
