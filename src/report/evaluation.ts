// Turns a model's predictions on a split into the numbers `evaluate` and `train` report: sklearn's classification
// metrics plus the screening statistics a clinic needs (positive class: Parasitized).
import type { Predictions as ModelPredictions } from '../model/predict.js';
import {
  classificationMetrics,
  positiveProbabilities,
  predictAtThreshold,
  screeningMetrics,
  type ClassificationMetrics,
  type Interval,
  type ScreeningMetrics,
} from './metrics.js';

/** The class a screener must not miss. Falls back to the first class for data sets without it. */
export const POSITIVE_CLASS = 'Parasitized';
export const DEFAULT_THRESHOLD = 0.5;

export interface Evaluation {
  metrics: ClassificationMetrics;
  /** Present for two-class models: one class is positive, the decision is P(positive) >= threshold. */
  screening?: ScreeningMetrics & { positiveLabel: string; threshold: number };
}

export function positiveIndexOf(classNames: readonly string[]): number {
  const index = classNames.indexOf(POSITIVE_CLASS);
  return index >= 0 ? index : 0;
}

/** Metrics of `predictions`; two-class models decide by threshold on P(positive), others by argmax. */
export function evaluatePredictions(predictions: ModelPredictions, classNames: string[], threshold = DEFAULT_THRESHOLD): Evaluation {
  const { probabilities, labels, classes } = predictions;
  if (classes !== 2) return { metrics: classificationMetrics(labels, { probs: probabilities }, classNames) };
  const positiveIndex = positiveIndexOf(classNames);
  const pPositive = positiveProbabilities(probabilities, classes, positiveIndex);
  const predicted = predictAtThreshold(pPositive, threshold, positiveIndex);
  return {
    metrics: classificationMetrics(labels, { labels: predicted }, classNames),
    screening: { ...screeningMetrics(labels, predicted, positiveIndex, pPositive), positiveLabel: classNames[positiveIndex], threshold },
  };
}

const round = (value: number | null, digits = 6): number | null => (value === null ? null : Number(value.toFixed(digits)));
const roundInterval = (interval: Interval | null): [number, number] | null =>
  interval === null ? null : [round(interval.lower) as number, round(interval.upper) as number];

/** The object `evaluate --json` prints. */
export function evaluationJson(evaluation: Evaluation): Record<string, unknown> {
  const { metrics, screening } = evaluation;
  const json: Record<string, unknown> = {
    n: metrics.total,
    labels: metrics.labels,
    accuracy: round(metrics.accuracy),
    classes: Object.fromEntries(
      metrics.perClass.map((c) => [c.label, { precision: round(c.precision), recall: round(c.recall), f1: round(c.f1), support: c.support }]),
    ),
    confusion: metrics.confusion,
  };
  if (screening) {
    Object.assign(json, {
      positive: screening.positiveLabel,
      threshold: screening.threshold,
      sensitivity: round(screening.sensitivity),
      specificity: round(screening.specificity),
      auc: round(screening.auc),
      mcc: round(screening.mcc),
      ci95: {
        accuracy: roundInterval(screening.ci95.accuracy),
        sensitivity: roundInterval(screening.ci95.sensitivity),
        specificity: roundInterval(screening.ci95.specificity),
      },
    });
  }
  return json;
}

const percent = (value: number | null): string => (value === null ? 'n/a' : `${(100 * value).toFixed(2)}%`);
const percentInterval = (interval: Interval | null): string =>
  interval === null ? '' : ` (95% CI ${(100 * interval.lower).toFixed(1)}-${(100 * interval.upper).toFixed(1)}%)`;

/** Screening lines printed under the classification report. */
export function formatScreening(screening: NonNullable<Evaluation['screening']>): string {
  const { counts } = screening;
  return [
    `positive class: ${screening.positiveLabel}, threshold P(${screening.positiveLabel}) >= ${screening.threshold}`,
    `sensitivity: ${percent(screening.sensitivity)}${percentInterval(screening.ci95.sensitivity)}  (${counts.tp} of ${counts.tp + counts.fn} parasitized cells found)`,
    `specificity: ${percent(screening.specificity)}${percentInterval(screening.ci95.specificity)}  (${counts.tn} of ${counts.tn + counts.fp} uninfected cells cleared)`,
    `accuracy:    ${percent(screening.accuracy)}${percentInterval(screening.ci95.accuracy)}`,
    `ROC AUC: ${screening.auc === null ? 'n/a (one class absent)' : screening.auc.toFixed(4)}   MCC: ${screening.mcc.toFixed(4)}`,
  ].join('\n');
}
