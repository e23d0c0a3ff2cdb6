// The label review a cross-validation ends with: the suspects of confident learning (src/stats/label-issues.ts)
// written for a person to look at. suspects.csv lists them most doubtful first (and is what `train --exclude`
// reads), suspects-per-patient.csv shows where they cluster, review.png draws them like `evaluate --errors`. Labels
// are never changed here: the review only says which cells to look at.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { csvLine } from '../io/csv.js';
import { asWriteError } from '../errors.js';
import { sweepLeftovers, writeFileAtomic } from '../io/atomic.js';
import { renderCellSheet, shortName } from '../report/error-sheet.js';
import {
  findLabelSuspects,
  suspectsPerPatient,
  type ClassThresholds,
  type LabelClasses,
  type LabelSuspect,
  type OutOfFoldRow,
  type PatientSuspectCount,
} from '../stats/label-issues.js';

const SUSPECTS_FILE = 'suspects.csv';
export const SUSPECTS_HEADER = ['file', 'sha256', 'patient', 'label', 'suggested', 'probability', 'margin'];
const PATIENTS_FILE = 'suspects-per-patient.csv';
export const PATIENTS_HEADER = ['patient', 'cells', 'suspects'];
const REVIEW_SHEET = 'review.png';

export interface LabelReviewOptions {
  /** The folder the review is written into; the caller has checked that it may be written. */
  outDir: string;
  rows: readonly OutOfFoldRow[];
  classes: LabelClasses;
  /** The folder the rows' `file` paths are relative to (the cross-validation's input); default: as they are. */
  inputDir?: string;
}

/** What the review found and wrote, for the caller's report. */
export interface LabelReview {
  thresholds: ClassThresholds;
  /** Most doubtful first. */
  suspects: LabelSuspect[];
  /** Every patient of the rows, most suspects first. */
  perPatient: PatientSuspectCount[];
  /** Cells drawn on review.png (at most SHEET.limit). */
  drawn: number;
  files: { suspects: string; perPatient: string; sheet: string };
}

/** Six decimals, like `predict --json`: enough to rank by, short enough to read. */
const rounded = (value: number): number => Number(value.toFixed(6));

function suspectsCsv(suspects: readonly LabelSuspect[]): string {
  const lines = suspects.map((s) =>
    csvLine([s.file, s.sha256, s.patient, s.label, s.suggested, rounded(s.probability), rounded(s.margin)]),
  );
  return csvLine(SUSPECTS_HEADER) + lines.join('');
}

function patientsCsv(counts: readonly PatientSuspectCount[]): string {
  return csvLine(PATIENTS_HEADER) + counts.map((c) => csvLine([c.patient, c.cells, c.suspects])).join('');
}

/** Finds the suspects in `rows` and writes suspects.csv, suspects-per-patient.csv and review.png into outDir. */
export async function writeLabelReview(options: LabelReviewOptions): Promise<LabelReview> {
  const { outDir, rows, classes, inputDir } = options;
  const { thresholds, suspects } = findLabelSuspects(rows, classes);
  const perPatient = suspectsPerPatient(rows, suspects);
  const files = {
    suspects: path.join(outDir, SUSPECTS_FILE),
    perPatient: path.join(outDir, PATIENTS_FILE),
    sheet: path.join(outDir, REVIEW_SHEET),
  };
  try {
    await fs.mkdir(outDir, { recursive: true });
    // Leftovers of a review killed while being written are ours to clear.
    await sweepLeftovers(outDir, [SUSPECTS_FILE, PATIENTS_FILE]);
    await writeFileAtomic(files.suspects, suspectsCsv(suspects));
    await writeFileAtomic(files.perPatient, patientsCsv(perPatient));
  } catch (err) {
    throw asWriteError(err, `cannot write the label review in ${outDir}`);
  }
  const threshold = (name: string, t: number) => `${name} ${t.toFixed(2)}`;
  const drawn = await renderCellSheet(
    {
      tiles: suspects.map((s) => ({
        file: inputDir === undefined ? s.file : path.resolve(inputDir, s.file),
        caption: [
          `labelled ${s.label}`,
          `P ${(s.suggested === classes.positive ? s.probability : 1 - s.probability).toFixed(2)} ${shortName(s.file)}`,
        ],
      })),
      heading: (shown) =>
        `label review: ${suspects.length} suspects of ${rows.length} cells` +
        (shown < suspects.length ? `, the ${shown} most doubtful shown` : ''),
      subtitle:
        `most doubtful first; thresholds ${threshold(classes.positive, thresholds.positive)}, ` +
        `${threshold(classes.negative, thresholds.negative)}; under each cell: its label, P(the other class), patient`,
    },
    files.sheet,
  );
  return { thresholds, suspects, perPatient, drawn, files };
}
