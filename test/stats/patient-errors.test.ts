import { describe, expect, it } from 'vitest';
import { errorsByPatient } from '../../src/stats/patient-errors.js';

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
});
