// Where a screener's errors fall, in one line of the screening report (stats/patient-errors.ts counts them).
import type { PatientErrors } from '../stats/patient-errors.js';

/**
 * "errors by patient (32 patients, 175 errors): C116P77 missed 68 of 219 parasitized, flagged 0 of 43 uninfected
 * (39% of the errors); ...": the `shown` patients with the most errors, counted in the model's own class names.
 * Empty when there is no error.
 */
export function formatPatientErrors(
  rows: readonly PatientErrors[],
  classes: { positive: string; negative: string } = { positive: 'Parasitized', negative: 'Uninfected' },
  shown = 3,
): string {
  const total = rows.reduce((sum, row) => sum + row.missed + row.flagged, 0);
  if (total === 0) return '';
  const worst = rows
    .slice(0, shown)
    .filter((row) => row.missed + row.flagged > 0)
    .map((row) => {
      const parts = [
        row.positives > 0 ? `missed ${row.missed} of ${row.positives} ${classes.positive.toLowerCase()}` : '',
        row.negatives > 0 ? `flagged ${row.flagged} of ${row.negatives} ${classes.negative.toLowerCase()}` : '',
      ].filter((part) => part !== '');
      return `${row.patient} ${parts.join(', ')} (${Math.round((100 * (row.missed + row.flagged)) / total)}% of the errors)`;
    });
  return `errors by patient (${rows.length} patients, ${total} errors): ${worst.join('; ')}`;
}
