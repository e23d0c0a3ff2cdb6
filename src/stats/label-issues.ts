// Label review by confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty in
// Dataset Labels", JAIR 70, 2021): from out-of-fold predictions, the cells whose labels the model's own
// cross-validated probabilities contradict. The thresholds are per class, the mean probability the model gives a
// class over the cells labelled with it, so a class the model is less sure of needs less to be suggested: a fixed
// 0.5 would flag every miss of an under-confident class and hide the doubts about a confident one.
import { UserError } from '../errors.js';

/** One row of crossval's oof.csv: a cell, its given label and the out-of-fold P(positive class). */
export interface OutOfFoldRow {
  file: string;
  sha256: string;
  patient: string;
  label: string;
  fold: number;
  /** P(positive class) from the model of the fold that held this cell out. */
  probability: number;
}

/** A cell whose given label the out-of-fold probabilities contradict. */
export interface LabelSuspect {
  file: string;
  sha256: string;
  patient: string;
  fold: number;
  label: string;
  /** The other class: the one the cell's probability points to. */
  suggested: string;
  /** The row's P(positive class), as in oof.csv. */
  probability: number;
  /**
   * P(suggested) - P(label), in [-1, 1]: the paper's margin, the higher the surer the label is wrong. It can be
   * negative: a cell reaches a class's threshold below 0.5 when the model is under-confident about that class.
   */
  margin: number;
}

/** The two classes by role; `probability` is P(positive). */
export interface LabelClasses {
  positive: string;
  negative: string;
}

/** Each class's threshold t_j: the mean probability of class j over the cells labelled j (self-confidence). */
export interface ClassThresholds {
  positive: number;
  negative: number;
}

export interface LabelReviewResult {
  thresholds: ClassThresholds;
  /** Most doubtful first: margin descending (the paper's normalized margin ascending), then file name. */
  suspects: LabelSuspect[];
}

/**
 * cleanlab's tolerance on "reaches the threshold": the mean of identical probabilities can round a hair above
 * them, and a cell equal to its class's mean must count as reaching it.
 */
const THRESHOLD_TOLERANCE = 1e-6;

function checkRows(rows: readonly OutOfFoldRow[], classes: LabelClasses): void {
  if (classes.positive === classes.negative) {
    throw new UserError(`the positive and negative classes are both ${classes.positive}: name two classes`);
  }
  for (const row of rows) {
    if (row.label !== classes.positive && row.label !== classes.negative) {
      throw new UserError(
        `${row.file} is labelled ${row.label}, not ${classes.positive} or ${classes.negative}: label review takes two-class predictions`,
      );
    }
    if (!(row.probability >= 0 && row.probability <= 1)) {
      throw new UserError(`${row.file} has probability ${row.probability}, not a number between 0 and 1`);
    }
  }
}

/** t_j for both classes; a class without cells has no self-confidence to measure. */
export function classThresholds(rows: readonly OutOfFoldRow[], classes: LabelClasses): ClassThresholds {
  let positiveSum = 0;
  let positiveCount = 0;
  let negativeSum = 0;
  let negativeCount = 0;
  for (const row of rows) {
    if (row.label === classes.positive) {
      positiveSum += row.probability;
      positiveCount++;
    } else {
      negativeSum += 1 - row.probability;
      negativeCount++;
    }
  }
  for (const [name, count] of [
    [classes.positive, positiveCount],
    [classes.negative, negativeCount],
  ] as const) {
    if (count === 0) {
      throw new UserError(
        `no cell is labelled ${name}: confident learning needs out-of-fold predictions for cells of both classes`,
      );
    }
  }
  return { positive: positiveSum / positiveCount, negative: negativeSum / negativeCount };
}

/**
 * The paper's label issues for two classes (its method C_{ỹ,y*}): the off-diagonal cells of the confident joint. A cell labelled i is
 * counted as class j when p_j reaches t_j and, if p_i reaches t_i as well, p_j is the larger (the joint's argmax
 * over the classes reached). A cell that reaches neither threshold is not confidently anything and is not suspect.
 */
export function findLabelSuspects(rows: readonly OutOfFoldRow[], classes: LabelClasses): LabelReviewResult {
  checkRows(rows, classes);
  const thresholds = classThresholds(rows, classes);
  const reaches = (p: number, threshold: number) => p >= threshold - THRESHOLD_TOLERANCE;
  const suspects: LabelSuspect[] = [];
  for (const row of rows) {
    const positive = row.label === classes.positive;
    const pGiven = positive ? row.probability : 1 - row.probability;
    const pOther = 1 - pGiven;
    const tGiven = positive ? thresholds.positive : thresholds.negative;
    const tOther = positive ? thresholds.negative : thresholds.positive;
    if (!reaches(pOther, tOther)) continue;
    if (reaches(pGiven, tGiven) && !(pOther > pGiven)) continue;
    suspects.push({
      file: row.file,
      sha256: row.sha256,
      patient: row.patient,
      fold: row.fold,
      label: row.label,
      suggested: positive ? classes.negative : classes.positive,
      probability: row.probability,
      margin: pOther - pGiven,
    });
  }
  // The paper ranks by normalized margin, (p_given - max p_other + 1) / 2, lowest first: for two classes that is
  // the margin above, highest first (and also self-confidence order). File name breaks ties, so runs agree.
  suspects.sort((a, b) => b.margin - a.margin || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { thresholds, suspects };
}

/** Cells and suspects of one patient. */
export interface PatientSuspectCount {
  patient: string;
  cells: number;
  suspects: number;
}

/** Suspects per patient, most suspects first (then patient id): where doubtful labels cluster, slide by slide. */
export function suspectsPerPatient(
  rows: readonly OutOfFoldRow[],
  suspects: readonly LabelSuspect[],
): PatientSuspectCount[] {
  const counts = new Map<string, PatientSuspectCount>();
  const entry = (patient: string) => {
    let found = counts.get(patient);
    if (!found) counts.set(patient, (found = { patient, cells: 0, suspects: 0 }));
    return found;
  };
  for (const row of rows) entry(row.patient).cells++;
  for (const suspect of suspects) entry(suspect.patient).suspects++;
  return [...counts.values()].sort(
    (a, b) => b.suspects - a.suspects || (a.patient < b.patient ? -1 : a.patient > b.patient ? 1 : 0),
  );
}
