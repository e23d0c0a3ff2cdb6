import { describe, expect, it } from 'vitest';
import { compareCrossvals, crossvalFigures, crossvalRocCurves } from '../../src/stats/crossval-figures.js';
import { CELLS, MODELS, P, U } from '../support/crossval-cells.js';

describe('crossvalFigures', () => {
  const figures = crossvalFigures(CELLS, MODELS, { positive: P, negative: U });

  it('scores each fold at its own threshold', () => {
    const [one, two] = figures.folds;
    expect(one).toMatchObject({ fold: 1, cells: 5, patients: 3, threshold: 0.5, temperature: 1.5 });
    expect(one.sensitivity).toBeCloseTo(2 / 3, 12);
    expect(one.specificity).toBeCloseTo(1 / 2, 12);
    expect(one.balancedAccuracy).toBeCloseTo(7 / 12, 12);
    expect(one.auc).toBeCloseTo(5 / 6, 12);
    expect(two).toMatchObject({ fold: 2, cells: 3, patients: 2, sensitivity: 1, specificity: 0.5, auc: 1 });
  });

  it('gives the mean and sample sd over folds, and the pooled figures with patient intervals', () => {
    expect(figures.mean.balancedAccuracy).toBeCloseTo((7 / 12 + 0.75) / 2, 12);
    expect(figures.sd.balancedAccuracy).toBeCloseTo(Math.abs(7 / 12 - 0.75) / Math.SQRT2, 12);
    const { pooled } = figures;
    expect(pooled).toMatchObject({ cells: 8, patients: 5, threshold: "each fold's own" });
    expect(pooled.sensitivity).toBeCloseTo(3 / 4, 12);
    expect(pooled.specificity).toBeCloseTo(2 / 4, 12);
    expect(pooled.ci95Method).toMatch(/over 5 patients/);
    for (const key of ['balancedAccuracy', 'sensitivity', 'specificity', 'auc'] as const) {
      const ci = pooled.ci95[key];
      expect(ci, key).not.toBeNull();
      expect(ci!.lower).toBeLessThanOrEqual(pooled[key]!);
      expect(ci!.upper).toBeGreaterThanOrEqual(pooled[key]!);
      expect(ci!.upper - ci!.lower, key).toBeGreaterThan(0);
    }
  });

  it('draws one ROC curve per fold and the pooled one', () => {
    const curves = crossvalRocCurves(CELLS, [1, 2], P);
    expect(curves.folds.map((fold) => fold.fold)).toEqual([1, 2]);
    expect(curves.folds[1].curve?.at(-1)).toMatchObject({ fpr: 1, tpr: 1 });
    expect(curves.pooled?.length).toBeGreaterThan(2);
  });
});

describe('compareCrossvals', () => {
  const classes = { positive: P, negative: U };
  const a = { cells: CELLS, models: MODELS };

  it('compares on the folds both finished: each run’s figures there and the pooled difference', () => {
    // b: fold 1 only, and patient C's parasitized cell found (0.3 -> 0.6): one more true positive in fold 1.
    const b = {
      cells: CELLS.filter((cell) => cell.fold === 1).map((cell) =>
        cell.patient === 'C' ? { ...cell, probability: 0.6 } : cell,
      ),
      models: [MODELS[0]],
    };
    const comparison = compareCrossvals(a, b, classes);
    expect(comparison.folds).toEqual([1]);
    expect(comparison.a.pooled.cells).toBe(5);
    expect(comparison.a.pooled.balancedAccuracy).toBeCloseTo(7 / 12, 12);
    expect(comparison.b.pooled.balancedAccuracy).toBeCloseTo((1 + 1 / 2) / 2, 12);
    expect(comparison.difference.balancedAccuracy.difference).toBeCloseTo(3 / 4 - 7 / 12, 12);
    expect(comparison.difference.clusters).toBe(3);
  });

  it('refuses a second run whose cells carry other labels or patients', () => {
    const relabelled = { cells: CELLS.map((cell, i) => (i === 0 ? { ...cell, patient: 'Z' } : cell)), models: MODELS };
    expect(() => compareCrossvals(a, relabelled, classes)).toThrow(/another label, patient or fold/);
  });
});
