// Turns a model's predictions on a split into the numbers `evaluate` and `train` report: sklearn's classification
// metrics plus the screening statistics a clinic needs, for the model's positive class (positive-class.ts).
import { DEFAULT_THRESHOLD } from '../config.js';
import { UserError } from '../errors.js';
import { clusterBootstrap, type BootstrapIntervals } from './bootstrap.js';
import { calibrationOf, type Calibration } from './calibration.js';
import { decide } from './decide.js';
import type { LabelledProbabilities } from './labelled-probabilities.js';
import { errorsByPatient, type PatientErrors } from './patient-errors.js';
import {
  argmaxRows,
  classificationMetrics,
  positiveMask,
  positiveProbabilities,
  predictAtThreshold,
  rocCurve,
  rocPointAt,
  rocAuc,
  screeningMetrics,
  thresholdForSensitivity,
  type ClassificationMetrics,
  type Interval,
  type RocPoint,
  type ScreeningMetrics,
} from './metrics.js';
import { negativeIndexOf, positiveIndexOf, type ClassLabels } from './positive-class.js';

/** Where the decision threshold came from: 0.5, the model's metadata.json, --threshold, or a validation search. */
export type ThresholdSource = 'default' | 'model' | 'flag' | 'validation';

/** A threshold chosen on one split to reach a target sensitivity (`--target-sensitivity`). */
export interface ThresholdSelection {
  split: string;
  targetSensitivity: number;
  threshold: number;
  /** The sensitivity it reaches on `split` (at least the target). */
  sensitivity: number;
  positivesFlagged: number;
  positives: number;
}

/** The screening figures of a two-class model at one threshold. */
export interface Screening extends Omit<ScreeningMetrics, 'ci95'> {
  positiveLabel: string;
  /** The other class: the one a cell below the threshold is cleared as. */
  negativeLabel: string;
  threshold: number;
  /**
   * 95% intervals: Wilson (per cell) for accuracy, sensitivity and specificity; a percentile bootstrap over
   * patients (over cells when no patient is known) for the balanced accuracy and the ROC AUC.
   */
  ci95: ScreeningMetrics['ci95'] & { balancedAccuracy: Interval | null; auc: Interval | null };
  /** "patient bootstrap (32 patients, 2000 replicates)" or "cell bootstrap (2400 cells, 2000 replicates)". */
  ci95Method: string;
  /** What the bootstrap resampled. */
  bootstrap: Omit<BootstrapIntervals, 'balancedAccuracy' | 'auc'>;
  /** Cells and errors per patient, most errors first; absent when no cell has a patient id. */
  patients?: PatientErrors[];
}

export interface Evaluation {
  metrics: ClassificationMetrics;
  /** Expected calibration error and reliability bins of the probabilities (stats/calibration.ts). */
  calibration: Calibration;
  /** Present for two-class models: one class is positive, the decision is P(positive) >= threshold. */
  screening?: Screening;
}

export interface EvaluationOptions {
  /**
   * The patient of each prediction row (undefined: unknown, the cell is resampled alone). Without it every cell
   * is its own cluster, and the intervals describe new cells rather than new patients.
   */
  clusters?: readonly (string | undefined)[];
}

/** The class index decided for each row: P(positive) >= threshold for two-class models, else the most probable class. */
export function decidedClasses(predictions: LabelledProbabilities, labels: ClassLabels, threshold: number): Int32Array {
  const { probabilities, classes } = predictions;
  if (classes !== 2) return argmaxRows(probabilities, classes);
  const positiveIndex = positiveIndexOf(labels);
  return predictAtThreshold(positiveProbabilities(probabilities, classes, positiveIndex), threshold, positiveIndex);
}

/**
 * Metrics of `predictions` for a model of `classLabels` (its class names and positive class); two-class models
 * decide by threshold on P(positive), others by argmax. `clusters` (one patient id per row) makes the bootstrap
 * intervals resample patients.
 */
export function evaluatePredictions(
  predictions: LabelledProbabilities,
  classLabels: ClassLabels,
  threshold = DEFAULT_THRESHOLD,
  options: EvaluationOptions = {},
): Evaluation {
  const { probabilities, labels, classes } = predictions;
  const classNames = [...classLabels.classNames];
  const calibration = calibrationOf(probabilities, labels, classes);
  const predicted = decidedClasses(predictions, classLabels, threshold);
  const metrics = classificationMetrics(labels, predicted, classNames);
  if (classes !== 2) return { metrics, calibration };
  const positiveIndex = positiveIndexOf(classLabels);
  const pPositive = positiveProbabilities(probabilities, classes, positiveIndex);
  const screening = screeningMetrics(labels, predicted, positiveIndex, pPositive);
  const isPositive = positiveMask(labels, positiveIndex);
  const predictedPositive = Array.from(predicted, (label) => label === positiveIndex);
  const { balancedAccuracy, auc, ...bootstrap } = clusterBootstrap({
    isPositive,
    scores: pPositive,
    predictedPositive,
    clusters: options.clusters,
  });
  const patients = options.clusters?.some((id) => id !== undefined)
    ? errorsByPatient(isPositive, predictedPositive, options.clusters)
    : undefined;
  return {
    metrics,
    calibration,
    screening: {
      ...screening,
      positiveLabel: classNames[positiveIndex],
      negativeLabel: classNames[negativeIndexOf(classLabels)],
      threshold,
      ci95: { ...screening.ci95, balancedAccuracy, auc },
      ci95Method: bootstrapMethod(bootstrap),
      bootstrap,
      ...(patients ? { patients } : {}),
    },
  };
}

const plural = (count: number, one: string, many = `${one}s`): string => `${count} ${count === 1 ? one : many}`;

/**
 * "32 patients", "2400 cells" or "32 patients and 5 cells without a patient id": the units resampled, which the
 * screening's `ci95Method` names (it is part of the figures `evaluate --json` prints) and report/evaluation.ts too.
 */
export function bootstrapUnits({ clusters, unnamed }: Pick<BootstrapIntervals, 'clusters' | 'unnamed'>): string {
  if (unnamed === clusters) return plural(clusters, 'cell');
  const patients = plural(clusters - unnamed, 'patient');
  return unnamed === 0 ? patients : `${patients} and ${plural(unnamed, 'cell')} without a patient id`;
}

function bootstrapMethod(bootstrap: Screening['bootstrap']): string {
  const kind = bootstrap.unnamed === bootstrap.clusters ? 'cell' : 'patient';
  return `${kind} bootstrap (${bootstrapUnits(bootstrap)}, ${plural(bootstrap.replicates, 'replicate')})`;
}

function twoClassScores(
  predictions: LabelledProbabilities,
  labels: ClassLabels,
  what: string,
): { pPositive: Float32Array; isPositive: boolean[]; positiveIndex: number } {
  if (predictions.classes !== 2)
    throw new UserError(`${what} needs a two-class model; this one has ${predictions.classes} classes`);
  const positiveIndex = positiveIndexOf(labels);
  return {
    pPositive: positiveProbabilities(predictions.probabilities, predictions.classes, positiveIndex),
    isPositive: positiveMask(predictions.labels, positiveIndex),
    positiveIndex,
  };
}

/**
 * The shortest decimal at or below `threshold` that makes the same decisions on float32 probabilities (which is
 * what a model outputs): 0.41234567 instead of 0.41234567165374756, so it can be read, saved and passed to
 * --threshold. Rounding up instead could drop the very positive the threshold was chosen to keep.
 */
export function readableThreshold(threshold: number): number {
  const single = Math.fround(threshold);
  if (single !== threshold) return threshold; // not a float32 value: keep it exact
  for (let digits = 1; digits <= 12; digits++) {
    const candidate = Number((Math.floor(threshold * 10 ** digits) / 10 ** digits).toFixed(digits));
    // Below the float32 threshold but nearer to it than to the float32 value under it: same decisions.
    if (candidate <= threshold && Math.fround(candidate) === single) return candidate;
  }
  return threshold;
}

/**
 * The largest threshold whose sensitivity on `predictions` (a validation split, never the test set) reaches
 * `target`; a UserError when the split holds no positive image.
 */
export function selectThreshold(
  predictions: LabelledProbabilities,
  labels: ClassLabels,
  target: number,
  split: string,
): ThresholdSelection {
  const { pPositive, isPositive, positiveIndex } = twoClassScores(predictions, labels, '--target-sensitivity');
  const exact = thresholdForSensitivity(pPositive, isPositive, target);
  if (exact === null) {
    throw new UserError(
      `the ${split} split holds no ${labels.classNames[positiveIndex]} images, so no threshold can be chosen on it; pass --threshold instead`,
      1,
    );
  }
  const threshold = readableThreshold(exact);
  let positives = 0;
  let positivesFlagged = 0;
  isPositive.forEach((positive, i) => {
    if (!positive) return;
    positives++;
    if (decide(pPositive[i], threshold)) positivesFlagged++;
  });
  return {
    split,
    targetSensitivity: target,
    threshold,
    sensitivity: positivesFlagged / positives,
    positivesFlagged,
    positives,
  };
}

export interface RocData {
  /** Empty when one class is absent (the rates are undefined). */
  curve: RocPoint[];
  auc: number | null;
  /** Where `threshold` puts the model on the curve. */
  operatingPoint?: RocPoint;
}

/** The ROC curve of a two-class model's predictions and the point of the threshold in force. */
export function rocData(predictions: LabelledProbabilities, labels: ClassLabels, threshold: number): RocData {
  const { pPositive, isPositive } = twoClassScores(predictions, labels, 'a ROC curve');
  const operatingPoint = rocPointAt(pPositive, isPositive, threshold) ?? undefined;
  return { curve: rocCurve(pPositive, isPositive) ?? [], auc: rocAuc(pPositive, isPositive), operatingPoint };
}

/** How the threshold was set, for `evaluate --json`. */
export interface ThresholdOrigin {
  source: ThresholdSource;
  selection?: ThresholdSelection;
}
