// Turns a model's predictions on a split into the numbers `evaluate` and `train` report: sklearn's classification
// metrics plus the screening statistics a clinic needs, for the model's positive class (positive-class.ts).
import type { Predictions as ModelPredictions } from '../model/predict.js';
import type { InferenceOptions } from '../model/inference.js';
import { DEFAULT_THRESHOLD } from '../config.js';
import { UserError } from '../errors.js';
import { clusterBootstrap, type BootstrapIntervals } from './bootstrap.js';
import { calibrationOf, formatEce, type Calibration } from './calibration.js';
import { errorsByPatient, formatPatientErrors, type PatientErrors } from './patient-errors.js';
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

/** The class decided for each row: P(positive) >= threshold for two-class models, else the most probable class. */
export function predictedLabels(predictions: ModelPredictions, labels: ClassLabels, threshold: number): Int32Array {
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
  predictions: ModelPredictions,
  classLabels: ClassLabels,
  threshold = DEFAULT_THRESHOLD,
  options: EvaluationOptions = {},
): Evaluation {
  const { probabilities, labels, classes } = predictions;
  const classNames = [...classLabels.classNames];
  const calibration = calibrationOf(probabilities, labels, classes);
  if (classes !== 2)
    return { metrics: classificationMetrics(labels, { probs: probabilities }, classNames), calibration };
  const positiveIndex = positiveIndexOf(classLabels);
  const pPositive = positiveProbabilities(probabilities, classes, positiveIndex);
  const predicted = predictAtThreshold(pPositive, threshold, positiveIndex);
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
    metrics: classificationMetrics(labels, { labels: predicted }, classNames),
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

/** "32 patients", "2400 cells" or "32 patients and 5 cells without a patient id": the units resampled. */
function bootstrapUnits({ clusters, unnamed }: Pick<BootstrapIntervals, 'clusters' | 'unnamed'>): string {
  if (unnamed === clusters) return plural(clusters, 'cell');
  const patients = plural(clusters - unnamed, 'patient');
  return unnamed === 0 ? patients : `${patients} and ${plural(unnamed, 'cell')} without a patient id`;
}

function bootstrapMethod(bootstrap: Screening['bootstrap']): string {
  const kind = bootstrap.unnamed === bootstrap.clusters ? 'cell' : 'patient';
  return `${kind} bootstrap (${bootstrapUnits(bootstrap)}, ${plural(bootstrap.replicates, 'replicate')})`;
}

function twoClassScores(
  predictions: ModelPredictions,
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
  predictions: ModelPredictions,
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
    if (pPositive[i] >= threshold) positivesFlagged++;
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
export function rocData(predictions: ModelPredictions, labels: ClassLabels, threshold: number): RocData {
  const { pPositive, isPositive } = twoClassScores(predictions, labels, 'a ROC curve');
  const operatingPoint = rocPointAt(pPositive, isPositive, threshold) ?? undefined;
  return { curve: rocCurve(pPositive, isPositive) ?? [], auc: rocAuc(pPositive, isPositive), operatingPoint };
}

const round = (value: number | null, digits = 6): number | null =>
  value === null ? null : Number(value.toFixed(digits));
const roundInterval = (interval: Interval | null): [number, number] | null =>
  interval === null ? null : [round(interval.lower) as number, round(interval.upper) as number];

/** How the threshold was set, for `evaluate --json`. */
export interface ThresholdOrigin {
  source: ThresholdSource;
  selection?: ThresholdSelection;
}

/** The object `evaluate --json` prints. */
export function evaluationJson(
  evaluation: Evaluation,
  origin?: ThresholdOrigin,
  inference: InferenceOptions = {},
): Record<string, unknown> {
  const { metrics, screening } = evaluation;
  const json: Record<string, unknown> = {
    n: metrics.total,
    labels: metrics.labels,
    accuracy: round(metrics.accuracy),
    classes: Object.fromEntries(
      metrics.perClass.map((c) => [
        c.label,
        { precision: round(c.precision), recall: round(c.recall), f1: round(c.f1), support: c.support },
      ]),
    ),
    confusion: metrics.confusion,
    ece: round(evaluation.calibration.ece),
  };
  if (inference.temperature !== undefined) json.temperature = inference.temperature;
  if (inference.tta) json.tta = true;
  if (screening) {
    Object.assign(json, {
      positive: screening.positiveLabel,
      threshold: screening.threshold,
      sensitivity: round(screening.sensitivity),
      specificity: round(screening.specificity),
      balancedAccuracy: round(screening.balancedAccuracy),
      auc: round(screening.auc),
      mcc: round(screening.mcc),
      ci95: {
        accuracy: roundInterval(screening.ci95.accuracy),
        sensitivity: roundInterval(screening.ci95.sensitivity),
        specificity: roundInterval(screening.ci95.specificity),
        balancedAccuracy: roundInterval(screening.ci95.balancedAccuracy),
        auc: roundInterval(screening.ci95.auc),
      },
      ci95Method: screening.ci95Method,
    });
    if (screening.patients) json.patients = screening.patients;
    if (origin) json.thresholdSource = origin.source;
    if (origin?.selection) {
      const { split, targetSensitivity, sensitivity, positivesFlagged, positives } = origin.selection;
      json.thresholdSelection = {
        split,
        targetSensitivity,
        sensitivity: round(sensitivity),
        positivesFlagged,
        positives,
      };
    }
  }
  return json;
}

const percent = (value: number | null): string => (value === null ? 'n/a' : `${(100 * value).toFixed(2)}%`);
const percentInterval = (interval: Interval | null): string =>
  interval === null ? '' : ` (95% CI ${(100 * interval.lower).toFixed(1)}-${(100 * interval.upper).toFixed(1)}%)`;

const THRESHOLD_ORIGINS: Record<ThresholdSource, string> = {
  default: 'the default',
  model: 'saved with the model',
  flag: 'from --threshold',
  validation: 'chosen on validation',
};

/** Where a threshold came from, in words ("saved with the model"). */
export function thresholdOrigin(source: ThresholdSource): string {
  return THRESHOLD_ORIGINS[source];
}

/** "threshold 0.31 chosen on validation for sensitivity >= 95.00%: it flags 40 of 42 Parasitized images there (...)". */
export function formatThresholdSelection(selection: ThresholdSelection, positiveLabel: string): string {
  return (
    `threshold ${selection.threshold} chosen on ${selection.split} for sensitivity >= ${percent(selection.targetSensitivity)}: ` +
    `it flags ${selection.positivesFlagged} of ${selection.positives} ${positiveLabel} images there (sensitivity ${percent(selection.sensitivity)})`
  );
}

/** "calibration: ECE 0.0213 (...), temperature 1.53 saved with the model, test-time augmentation (8 views)". */
export function formatCalibration(calibration: Calibration, inference: InferenceOptions = {}): string {
  return `calibration: ECE ${formatEce(calibration.ece)}, ${formatInference(inference)}`;
}

/** "temperature 1.53 saved with the model, test-time augmentation (...)": how the probabilities were made. */
export function formatInference(inference: InferenceOptions): string {
  const parts = [
    inference.temperature === undefined
      ? 'no temperature (T = 1)'
      : `temperature ${inference.temperature} saved with the model`,
  ];
  if (inference.tta) parts.push('test-time augmentation (mean of 8 flips and rotations)');
  return parts.join(', ');
}

/** " (95% CI 95.1-97.6%, bootstrap over 32 patients)", or why there is no interval. */
function bootstrapInterval(
  interval: Interval | null,
  bootstrap: Screening['bootstrap'],
  format: (value: number) => string,
  unit = '',
): string {
  if (interval !== null)
    return ` (95% CI ${format(interval.lower)}-${format(interval.upper)}${unit}, bootstrap over ${bootstrapUnits(bootstrap)})`;
  if (bootstrap.skipped === bootstrap.replicates) return '';
  return ` (no 95% CI: ${bootstrap.skipped} of ${bootstrap.replicates} bootstrap replicates over ${bootstrapUnits(bootstrap)} lacked a class)`;
}

/** Screening lines printed under the classification report; `source` says where the threshold came from. */
export function formatScreening(screening: Screening, source?: ThresholdSource): string {
  const { counts, bootstrap } = screening;
  const origin = source ? ` (${thresholdOrigin(source)})` : '';
  const auc =
    screening.auc === null
      ? 'n/a (one class absent)'
      : `${screening.auc.toFixed(4)}${bootstrapInterval(screening.ci95.auc, bootstrap, (v) => v.toFixed(4))}`;
  return [
    `positive class: ${screening.positiveLabel}, threshold P(${screening.positiveLabel}) >= ${screening.threshold}${origin}`,
    `sensitivity: ${percent(screening.sensitivity)}${percentInterval(screening.ci95.sensitivity)}  (${counts.tp} of ${counts.tp + counts.fn} ${screening.positiveLabel.toLowerCase()} cells found)`,
    `specificity: ${percent(screening.specificity)}${percentInterval(screening.ci95.specificity)}  (${counts.tn} of ${counts.tn + counts.fp} ${screening.negativeLabel.toLowerCase()} cells cleared)`,
    `accuracy:    ${percent(screening.accuracy)}${percentInterval(screening.ci95.accuracy)}`,
    `balanced accuracy: ${percent(screening.balancedAccuracy)}${bootstrapInterval(screening.ci95.balancedAccuracy, bootstrap, (v) => (100 * v).toFixed(1), '%')}`,
    `ROC AUC: ${auc}   MCC: ${screening.mcc.toFixed(4)}`,
    formatPatientErrors(screening.patients ?? [], {
      positive: screening.positiveLabel,
      negative: screening.negativeLabel,
    }),
  ]
    .filter((line) => line !== '')
    .join('\n');
}
