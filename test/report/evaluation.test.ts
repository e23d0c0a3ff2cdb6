import { describe, expect, it } from 'vitest';
import { formatScreening, evaluationJson, formatThresholdSelection } from '../../src/report/evaluation.js';
import { evaluatePredictions, selectThreshold } from '../../src/stats/evaluation.js';
import { errorsByPatient } from '../../src/stats/patient-errors.js';
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

describe('evaluationJson and formatScreening', () => {
  it('add where the threshold came from, and the validation search when there was one', () => {
    const selection = selectThreshold(validation, CLASSES, 0.8, 'validation');
    const evaluation = evaluatePredictions(validation, CLASSES, selection.threshold);
    const json = evaluationJson(evaluation, { source: 'validation', selection });
    expect(json).toMatchObject({
      threshold: 0.34999999,
      thresholdSource: 'validation',
      thresholdSelection: {
        split: 'validation',
        targetSensitivity: 0.8,
        sensitivity: 0.8,
        positivesFlagged: 4,
        positives: 5,
      },
      sensitivity: 0.8,
      specificity: 0.75,
    });
    expect(evaluationJson(evaluation)).not.toHaveProperty('thresholdSource');
    expect(evaluationJson(evaluation, { source: 'model' })).toMatchObject({ thresholdSource: 'model' });
    expect(evaluationJson(evaluation, { source: 'model' })).not.toHaveProperty('thresholdSelection');

    expect(formatScreening(evaluation.screening!, 'model').split('\n')[0]).toBe(
      'positive class: Parasitized, threshold P(Parasitized) >= 0.34999999 (saved with the model)',
    );
    expect(formatScreening(evaluation.screening!).split('\n')[0]).toBe(
      'positive class: Parasitized, threshold P(Parasitized) >= 0.34999999',
    );
    expect(formatThresholdSelection(selection, 'Parasitized')).toBe(
      'threshold 0.34999999 chosen on validation for sensitivity >= 80.00%: it flags 4 of 5 Parasitized images there (sensitivity 80.00%)',
    );
  });
});

describe('the bootstrap intervals in the report', () => {
  it('are printed by formatScreening and emitted by evaluationJson', () => {
    const evaluation = evaluatePredictions(cells, CLASSES, 0.5, { clusters: patients });
    const screening = evaluation.screening!;
    const lines = formatScreening(screening).split('\n');
    const pct = (value: number) => (100 * value).toFixed(1);
    expect(lines).toContain(
      `balanced accuracy: ${(100 * screening.balancedAccuracy!).toFixed(2)}% (95% CI ${pct(screening.ci95.balancedAccuracy!.lower)}-${pct(screening.ci95.balancedAccuracy!.upper)}%, bootstrap over 12 patients)`,
    );
    expect(lines.find((line) => line.startsWith('ROC AUC:'))).toBe(
      `ROC AUC: ${screening.auc!.toFixed(4)} (95% CI ${screening.ci95.auc!.lower.toFixed(4)}-${screening.ci95.auc!.upper.toFixed(4)}, bootstrap over 12 patients)   MCC: ${screening.mcc.toFixed(4)}`,
    );
    const json = evaluationJson(evaluation);
    expect(json.balancedAccuracy).toBeCloseTo(screening.balancedAccuracy!, 6);
    expect(json.ci95Method).toBe('patient bootstrap (12 patients, 2000 replicates)');
    const ci95 = json.ci95 as Record<string, [number, number]>;
    expect(ci95.balancedAccuracy[0]).toBeCloseTo(screening.ci95.balancedAccuracy!.lower, 6);
    expect(ci95.auc[1]).toBeCloseTo(screening.ci95.auc!.upper, 6);
  });

  it('says why an interval is missing', () => {
    // The one positive patient is missed by about a third of the replicates: no interval.
    const onePositivePatient = predictions(
      scores,
      labels.map((_, i) => (i < 10 ? 0 : 1)),
    );
    const screening = evaluatePredictions(onePositivePatient, CLASSES, 0.5, { clusters: patients }).screening!;
    expect(screening.ci95.balancedAccuracy).toBeNull();
    expect(screening.ci95.auc).toBeNull();
    const lines = formatScreening(screening).split('\n');
    const missing =
      /^balanced accuracy: [\d.]+% \(no 95% CI: (\d+) of 2000 bootstrap replicates over 12 patients lacked a class\)$/;
    const skipped = Number(missing.exec(lines.find((line) => line.startsWith('balanced accuracy:'))!)?.[1]);
    expect(skipped).toBeGreaterThan(200);
    expect(lines.find((line) => line.startsWith('ROC AUC:'))).toMatch(
      /^ROC AUC: [\d.]+ \(no 95% CI: \d+ of 2000 bootstrap replicates over 12 patients lacked a class\) {3}MCC/,
    );
    // No positive at all: no balanced accuracy and no interval to speak of.
    const negativesOnly = evaluatePredictions(predictions([0.2, 0.9], [1, 1]), CLASSES, 0.5).screening!;
    expect(negativesOnly.balancedAccuracy).toBeNull();
    expect(formatScreening(negativesOnly)).toContain('balanced accuracy: n/a\n');
  });
});

describe('the positive class', () => {
  it('names the screening lines and the JSON', () => {
    const screening = evaluatePredictions(sickCells, sick, 0.5).screening!;
    const lines = formatScreening(screening).split('\n');
    expect(lines[0]).toBe('positive class: Sick, threshold P(Sick) >= 0.5');
    expect(lines[1]).toMatch(/\(2 of 3 sick cells found\)$/);
    expect(lines[2]).toMatch(/\(3 of 4 healthy cells cleared\)$/);
    expect(evaluationJson(evaluatePredictions(sickCells, sick, 0.5))).toMatchObject({ positive: 'Sick' });
  });
});

describe('errors by patient', () => {
  // Six cells of three patients (and one without an id): truth, decision.
  const isPositive = [true, true, true, false, false, true, false];
  const predictedPositive = [false, false, true, true, false, true, true];
  const patients = ['A', 'A', 'A', 'B', 'B', 'C', undefined];

  it('reaches evaluate’s report and JSON when the cells have patient ids', () => {
    // P(Parasitized) in column 0; label 0 = Parasitized. Decisions at 0.5 match predictedPositive above.
    const p = predictedPositive.map((flag) => (flag ? 0.8 : 0.2));
    const predictions = {
      probabilities: Float32Array.from(p.flatMap((v) => [v, 1 - v])),
      labels: Int32Array.from(isPositive.map((positive) => (positive ? 0 : 1))),
      classes: 2,
    };
    const evaluation = evaluatePredictions(
      predictions,
      { classNames: ['Parasitized', 'Uninfected'], positiveClass: 'Parasitized' },
      0.5,
      { clusters: patients },
    );
    expect(formatScreening(evaluation.screening!)).toContain(
      '\nerrors by patient (3 patients, 3 errors): A missed 2 of 3 parasitized',
    );
    expect(evaluationJson(evaluation).patients).toEqual(errorsByPatient(isPositive, predictedPositive, patients));
    // Without ids there is nothing per patient.
    const anonymous = evaluatePredictions(
      predictions,
      { classNames: ['Parasitized', 'Uninfected'], positiveClass: 'Parasitized' },
      0.5,
    );
    expect(anonymous.screening!.patients).toBeUndefined();
    expect(formatScreening(anonymous.screening!)).not.toContain('errors by patient');
  });
});
