import { describe, expect, it } from 'vitest';
import { errorsByPatient, formatPatientErrors } from '../../src/stats/patient-errors.js';
import { evaluatePredictions, evaluationJson, formatScreening } from '../../src/stats/evaluation.js';

// Six cells of three patients (and one without an id): truth, decision.
const isPositive = [true, true, true, false, false, true, false];
const predictedPositive = [false, false, true, true, false, true, true];
const patients = ['A', 'A', 'A', 'B', 'B', 'C', undefined];

describe('errorsByPatient', () => {
  it('counts each patient’s missed and flagged cells, most errors first, leaving out cells without an id', () => {
    expect(errorsByPatient(isPositive, predictedPositive, patients)).toEqual([
      { patient: 'A', positives: 3, missed: 2, negatives: 0, flagged: 0 },
      { patient: 'B', positives: 0, missed: 0, negatives: 2, flagged: 1 },
      { patient: 'C', positives: 1, missed: 0, negatives: 0, flagged: 0 },
    ]);
  });

  it('formats the worst patients with their share of the errors, and nothing when there is no error', () => {
    const rows = errorsByPatient(isPositive, predictedPositive, patients);
    expect(formatPatientErrors(rows, undefined, 2)).toBe(
      'errors by patient (3 patients, 3 errors): A missed 2 of 3 parasitized (67% of the errors); ' +
        'B flagged 1 of 2 uninfected (33% of the errors)',
    );
    // Another pair of classes is counted in its own names.
    expect(formatPatientErrors(rows, { positive: 'Sick', negative: 'Healthy' }, 1)).toBe(
      'errors by patient (3 patients, 3 errors): A missed 2 of 3 sick (67% of the errors)',
    );
    expect(formatPatientErrors(errorsByPatient(isPositive, isPositive, patients))).toBe('');
  });

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
