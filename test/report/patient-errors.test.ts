import { describe, expect, it } from 'vitest';
import { formatPatientErrors } from '../../src/report/patient-errors.js';
import { errorsByPatient } from '../../src/stats/patient-errors.js';

// Six cells of three patients (and one without an id): truth, decision.
const isPositive = [true, true, true, false, false, true, false];
const predictedPositive = [false, false, true, true, false, true, true];
const patients = ['A', 'A', 'A', 'B', 'B', 'C', undefined];

describe('formatPatientErrors', () => {
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
});
