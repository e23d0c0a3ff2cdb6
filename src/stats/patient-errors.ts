// Where a screener's errors fall, patient by patient: a few hard slides (an unusual stain, doubtful labels) can
// account for most of the missed cells, which the split-wide figures hide.

/** One patient's cells and errors at the threshold in force. */
export interface PatientErrors {
  patient: string;
  /** Positive (parasitized) cells, and those the model missed. */
  positives: number;
  missed: number;
  /** Negative (uninfected) cells, and those the model flagged. */
  negatives: number;
  flagged: number;
}

/**
 * Cells and errors per patient (cells without a patient id are left out), most errors first; ties keep the
 * order in which the patients first appear.
 */
export function errorsByPatient(
  isPositive: readonly boolean[],
  predictedPositive: readonly boolean[],
  patients: readonly (string | undefined)[],
): PatientErrors[] {
  const byPatient = new Map<string, PatientErrors>();
  isPositive.forEach((positive, i) => {
    const patient = patients[i];
    if (patient === undefined) return;
    let row = byPatient.get(patient);
    if (!row) byPatient.set(patient, (row = { patient, positives: 0, missed: 0, negatives: 0, flagged: 0 }));
    if (positive) {
      row.positives++;
      if (!predictedPositive[i]) row.missed++;
    } else {
      row.negatives++;
      if (predictedPositive[i]) row.flagged++;
    }
  });
  const errors = (row: PatientErrors) => row.missed + row.flagged;
  return [...byPatient.values()].sort((a, b) => errors(b) - errors(a));
}
