// Classification metrics with sklearn's definitions (zero division -> 0), plus binary screening statistics
// (sensitivity, specificity, ROC AUC, MCC, Wilson intervals, threshold choice) for one positive class.
import { UserError } from '../errors.js';
import { decide } from './decide.js';

export interface ClassScores {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Images whose true class is this one. */
  support: number;
}

export interface AverageScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationMetrics {
  labels: string[];
  /** confusion[i][j] = images of true class i predicted as class j. */
  confusion: number[][];
  perClass: ClassScores[];
  /** Fraction classified correctly; 0 when there are no images (sklearn's zero_division=0). */
  accuracy: number;
  total: number;
  macro: AverageScores;
  weighted: AverageScores;
}

/** sklearn's default zero_division: an undefined ratio counts as 0 (and is not NaN). */
function ratioOrZero(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/** Undefined ratios are null here: a screening statistic with no cases behind it is "unknown", not 0. */
function ratioOrNull(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : numerator / denominator;
}

function assertClassIndex(value: number, numClasses: number, where: string): void {
  if (!Number.isInteger(value) || value < 0 || value >= numClasses) {
    throw new RangeError(`${where}: class index ${value} is not an integer in [0, ${numClasses})`);
  }
}

function assertFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      // NaN probabilities mean the model diverged; a report built on them would be meaningless.
      throw new UserError(
        `${what} contain a non-finite value (${values[i]}) at row ${i}; the model probably diverged`,
        1,
      );
    }
  }
}

/** Row-wise argmax of an n x numClasses probability matrix; ties go to the first class, like np.argmax. */
export function argmaxRows(probs: Float32Array, numClasses: number): Int32Array {
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
  if (probs.length % numClasses !== 0) {
    throw new RangeError(`probabilities have ${probs.length} values, not a multiple of ${numClasses} classes`);
  }
  assertFinite(probs, 'predicted probabilities');
  const n = probs.length / numClasses;
  const out = new Int32Array(n);
  for (let row = 0; row < n; row++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) {
      if (probs[row * numClasses + c] > probs[row * numClasses + best]) best = c;
    }
    out[row] = best;
  }
  return out;
}

export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, numClasses: number): number[][] {
  if (yTrue.length !== yPred.length) {
    throw new RangeError(`${yTrue.length} true labels but ${yPred.length} predictions`);
  }
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    assertClassIndex(yTrue[i], numClasses, `true label ${i}`);
    assertClassIndex(yPred[i], numClasses, `prediction ${i}`);
    confusion[yTrue[i]][yPred[i]] += 1;
  }
  return confusion;
}

/** Per-class and averaged scores from a confusion matrix, as sklearn's precision_recall_fscore_support. */
export function metricsFromConfusion(confusion: number[][], labels: string[]): ClassificationMetrics {
  const k = labels.length;
  if (confusion.length !== k || confusion.some((row) => row.length !== k)) {
    throw new RangeError(`confusion matrix must be ${k} x ${k} for ${k} labels`);
  }
  let total = 0;
  let correct = 0;
  const perClass: ClassScores[] = labels.map((label, c) => {
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < k; j++) support += confusion[c][j];
    for (let i = 0; i < k; i++) predicted += confusion[i][c];
    const tp = confusion[c][c];
    total += support;
    correct += tp;
    const precision = ratioOrZero(tp, predicted);
    const recall = ratioOrZero(tp, support);
    // sklearn computes F1 as 2tp / (2tp + fp + fn), which is 0 (not NaN) when precision = recall = 0.
    const f1 = ratioOrZero(2 * tp, predicted + support);
    return { label, precision, recall, f1, support };
  });

  const mean = (pick: (s: ClassScores) => number): number =>
    k === 0 ? 0 : perClass.reduce((sum, s) => sum + pick(s), 0) / k;
  const supportWeighted = (pick: (s: ClassScores) => number): number =>
    ratioOrZero(
      perClass.reduce((sum, s) => sum + pick(s) * s.support, 0),
      total,
    );

  return {
    labels: [...labels],
    confusion: confusion.map((row) => [...row]),
    perClass,
    accuracy: ratioOrZero(correct, total),
    total,
    macro: {
      precision: mean((s) => s.precision),
      recall: mean((s) => s.recall),
      f1: mean((s) => s.f1),
      support: total,
    },
    weighted: {
      precision: supportWeighted((s) => s.precision),
      recall: supportWeighted((s) => s.recall),
      f1: supportWeighted((s) => s.f1),
      support: total,
    },
  };
}

/**
 * The full sklearn-style metrics for true class indices against the decided ones (evaluation.ts's decidedClasses).
 */
export function classificationMetrics(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  labels: string[],
): ClassificationMetrics {
  return metricsFromConfusion(confusionMatrix(yTrue, yPred, labels.length), labels);
}

// ---------------------------------------------------------------------------------------------------------
// Binary screening: one class is "positive" (the model's positiveClass, positive-class.ts), every other is negative.

/** z for a two-sided 95% interval, the value the brief fixes (qnorm(0.975) to 6 digits). */
const WILSON_Z_95 = 1.959964;

export interface Interval {
  lower: number;
  upper: number;
}

export interface BinaryCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface RocPoint {
  fpr: number;
  tpr: number;
  /** Predicting positive when P(positive) >= threshold gives this point; the first point uses Infinity. */
  threshold: number;
}

export interface ScreeningMetrics {
  positiveIndex: number;
  counts: BinaryCounts;
  n: number;
  accuracy: number | null;
  /** Mean of sensitivity and specificity (null when either is). */
  balancedAccuracy: number | null;
  /** Recall of the positive class. */
  sensitivity: number | null;
  /** Recall of the negative class(es). */
  specificity: number | null;
  /** Positive predictive value (precision of the positive class). */
  ppv: number | null;
  npv: number | null;
  /** Matthews correlation; 0 when a margin of the 2x2 table is empty, as sklearn returns. */
  mcc: number;
  /** ROC AUC from P(positive); null without probabilities or when one class is absent. */
  auc: number | null;
  ci95: { accuracy: Interval | null; sensitivity: Interval | null; specificity: Interval | null };
}

/** true where the true class is the positive class. Booleans (not 0/1) so indices can't be mistaken for a mask. */
export function positiveMask(yTrue: ArrayLike<number>, positiveIndex: number): boolean[] {
  return Array.from(yTrue, (label) => label === positiveIndex);
}

/** Column `positiveIndex` of an n x numClasses probability matrix. */
export function positiveProbabilities(probs: Float32Array, numClasses: number, positiveIndex: number): Float32Array {
  assertClassIndex(positiveIndex, numClasses, 'positive class');
  if (probs.length % numClasses !== 0) {
    throw new RangeError(`probabilities have ${probs.length} values, not a multiple of ${numClasses} classes`);
  }
  const n = probs.length / numClasses;
  const out = new Float32Array(n);
  for (let row = 0; row < n; row++) out[row] = probs[row * numClasses + positiveIndex];
  return out;
}

/** Class indices from P(positive): positive when p >= threshold, otherwise `negativeIndex`. */
export function predictAtThreshold(
  pPositive: ArrayLike<number>,
  threshold: number,
  positiveIndex: number,
  negativeIndex: number = positiveIndex === 0 ? 1 : 0,
): Int32Array {
  assertFinite(pPositive, 'positive-class probabilities');
  return Int32Array.from(pPositive, (p) => (decide(p, threshold) ? positiveIndex : negativeIndex));
}

export function binaryCounts(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, positiveIndex: number): BinaryCounts {
  if (yTrue.length !== yPred.length)
    throw new RangeError(`${yTrue.length} true labels but ${yPred.length} predictions`);
  const counts: BinaryCounts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < yTrue.length; i++) {
    const actual = yTrue[i] === positiveIndex;
    const predicted = yPred[i] === positiveIndex;
    if (actual && predicted) counts.tp++;
    else if (actual) counts.fn++;
    else if (predicted) counts.fp++;
    else counts.tn++;
  }
  return counts;
}

export function matthewsCorrelation({ tp, fp, tn, fn }: BinaryCounts): number {
  const denominator = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
  return denominator === 0 ? 0 : (tp * tn - fp * fn) / denominator;
}

/** Wilson score interval for `successes` out of `n`; null when n = 0 (no information). */
export function wilsonInterval(successes: number, n: number, z: number = WILSON_Z_95): Interval | null {
  if (n === 0) return null;
  if (successes < 0 || successes > n) throw new RangeError(`successes ${successes} outside [0, ${n}]`);
  const p = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const halfWidth = (z / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // Clamp only the rounding error at the ends (e.g. 1.0000000000000002 for p = 1).
  return { lower: Math.max(0, centre - halfWidth), upper: Math.min(1, centre + halfWidth) };
}

function checkScores(scores: ArrayLike<number>, isPositive: ArrayLike<boolean>): void {
  if (scores.length !== isPositive.length)
    throw new RangeError(`${scores.length} scores but ${isPositive.length} labels`);
  assertFinite(scores, 'positive-class probabilities');
}

/**
 * ROC AUC as the Mann-Whitney statistic: the probability that a random positive scores above a random
 * negative, ties counted as 1/2. Mid-ranks make ties exact. null when either class is absent.
 */
export function rocAuc(scores: ArrayLike<number>, isPositive: ArrayLike<boolean>): number | null {
  checkScores(scores, isPositive);
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let positiveRankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start;
    while (end + 1 < n && scores[order[end + 1]] === scores[order[start]]) end++;
    const midRank = (start + end + 2) / 2; // 1-based ranks start+1 .. end+1 share their mean.
    for (let i = start; i <= end; i++) {
      if (isPositive[order[i]]) {
        positives++;
        positiveRankSum += midRank;
      }
    }
    start = end + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * ROC points from the strictest threshold to the loosest: (0, 0) at threshold Infinity, then one point per
 * distinct score (predict positive when p >= score). null when either class is absent (rates undefined).
 */
export function rocCurve(scores: ArrayLike<number>, isPositive: ArrayLike<boolean>): RocPoint[] | null {
  checkScores(scores, isPositive);
  const n = scores.length;
  let positives = 0;
  for (let i = 0; i < n; i++) if (isPositive[i]) positives++;
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const points: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: Number.POSITIVE_INFINITY }];
  let tp = 0;
  let fp = 0;
  for (let start = 0; start < n; ) {
    const threshold = scores[order[start]];
    let end = start;
    while (end < n && scores[order[end]] === threshold) {
      if (isPositive[order[end]]) tp++;
      else fp++;
      end++;
    }
    points.push({ fpr: fp / negatives, tpr: tp / positives, threshold });
    start = end;
  }
  return points;
}

/** Area under ROC points by the trapezoid rule (equals rocAuc on the same data, ties included). */
export function trapezoidAuc(points: readonly RocPoint[]): number {
  let area = 0;
  for (let i = 1; i < points.length; i++) {
    area += ((points[i].fpr - points[i - 1].fpr) * (points[i].tpr + points[i - 1].tpr)) / 2;
  }
  return area;
}

/** The ROC point a given threshold produces; null when either class is absent. */
export function rocPointAt(
  pPositive: ArrayLike<number>,
  isPositive: ArrayLike<boolean>,
  threshold: number,
): RocPoint | null {
  checkScores(pPositive, isPositive);
  let tp = 0;
  let fp = 0;
  let positives = 0;
  for (let i = 0; i < pPositive.length; i++) {
    const flagged = decide(pPositive[i], threshold);
    if (isPositive[i]) {
      positives++;
      if (flagged) tp++;
    } else if (flagged) fp++;
  }
  const negatives = pPositive.length - positives;
  if (positives === 0 || negatives === 0) return null;
  return { fpr: fp / negatives, tpr: tp / positives, threshold };
}

/**
 * The largest threshold t such that predicting positive for p >= t reaches sensitivity >= target.
 * That is the k-th highest positive score, with k the fewest positives that meet the target; a larger t
 * would drop that positive. Choose it on a validation split, not on the test set. null without positives.
 */
export function thresholdForSensitivity(
  pPositive: ArrayLike<number>,
  isPositive: ArrayLike<boolean>,
  target: number,
): number | null {
  if (!(target > 0 && target <= 1)) throw new RangeError(`target sensitivity must be in (0, 1], got ${target}`);
  checkScores(pPositive, isPositive);
  const positiveScores: number[] = [];
  for (let i = 0; i < pPositive.length; i++) if (isPositive[i]) positiveScores.push(pPositive[i]);
  if (positiveScores.length === 0) return null;
  positiveScores.sort((a, b) => b - a);
  const count = positiveScores.length;
  // Smallest k with k / count >= target, computed by the same division the sensitivity uses (no epsilon).
  let k = Math.max(1, Math.ceil(target * count));
  while (k > 1 && (k - 1) / count >= target) k--;
  while (k < count && k / count < target) k++;
  return positiveScores[k - 1];
}

/**
 * Screening statistics for one positive class. `pPositive` (P(positive) per image) adds the ROC AUC.
 */
export function screeningMetrics(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  positiveIndex: number,
  pPositive?: ArrayLike<number>,
): ScreeningMetrics {
  const counts = binaryCounts(yTrue, yPred, positiveIndex);
  const { tp, fp, tn, fn } = counts;
  const n = tp + fp + tn + fn;
  const sensitivity = ratioOrNull(tp, tp + fn);
  const specificity = ratioOrNull(tn, tn + fp);
  return {
    positiveIndex,
    counts,
    n,
    accuracy: ratioOrNull(tp + tn, n),
    balancedAccuracy: sensitivity === null || specificity === null ? null : (sensitivity + specificity) / 2,
    sensitivity,
    specificity,
    ppv: ratioOrNull(tp, tp + fp),
    npv: ratioOrNull(tn, tn + fn),
    mcc: matthewsCorrelation(counts),
    auc: pPositive === undefined ? null : rocAuc(pPositive, positiveMask(yTrue, positiveIndex)),
    ci95: {
      accuracy: wilsonInterval(tp + tn, n),
      sensitivity: wilsonInterval(tp, tp + fn),
      specificity: wilsonInterval(tn, tn + fp),
    },
  };
}
