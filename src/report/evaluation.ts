// The text and JSON of an evaluation (stats/evaluation.ts makes the figures): the screening lines `evaluate` and
// `train` print under the classification report, how the threshold was set and how the probabilities were made,
// and the object `evaluate --json` prints.
import type { InferenceOptions } from '../model/inference.js';
import type { Calibration } from '../stats/calibration.js';
import {
  bootstrapUnits,
  type Evaluation,
  type Screening,
  type ThresholdOrigin,
  type ThresholdSelection,
  type ThresholdSource,
} from '../stats/evaluation.js';
import type { Interval } from '../stats/metrics.js';
import { formatEce } from './calibration.js';
import { formatPatientErrors } from './patient-errors.js';

const round = (value: number | null, digits = 6): number | null =>
  value === null ? null : Number(value.toFixed(digits));
const roundInterval = (interval: Interval | null): [number, number] | null =>
  interval === null ? null : [round(interval.lower) as number, round(interval.upper) as number];

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
