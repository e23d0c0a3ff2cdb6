// The figures of a cross-validation, from its out-of-fold probabilities: per fold (on the patients that fold held
// out), their mean and spread over the folds, and pooled over every cell with intervals that resample patients.
import seedrandom from 'seedrandom';
import {
  BOOTSTRAP_REPLICATES,
  BOOTSTRAP_SEED,
  clusterBootstrap,
  pairedClusterBootstrap,
  type PairedDifferences,
} from './bootstrap.js';
import { calibrationOf } from './calibration.js';
import { decide } from './decide.js';
import type { OutOfFoldRow } from './label-issues.js';
import { rocCurve, screeningMetrics, type Interval, type RocPoint } from './metrics.js';

/** One cell's out-of-fold result, as in oof.csv less its sha256 (`probability` is P(positive class)). */
export type OutOfFoldCell = Omit<OutOfFoldRow, 'sha256'>;

/** What the figures need to know about each fold's model. */
export interface FoldModel {
  fold: number;
  /** Positive when P(positive) >= threshold. */
  threshold: number;
  /** The temperature fitted on the fold's validation patients (absent: none applied). */
  temperature?: number;
}

export interface Figures {
  balancedAccuracy: number | null;
  sensitivity: number | null;
  specificity: number | null;
  auc: number | null;
  /** Expected calibration error of the (temperature-scaled) probabilities. */
  ece: number;
}

const FIGURE_KEYS = ['balancedAccuracy', 'sensitivity', 'specificity', 'auc', 'ece'] as const;

export interface FoldFigures extends Figures, FoldModel {
  cells: number;
  patients: number;
}

export interface PooledFigures extends Figures {
  cells: number;
  patients: number;
  threshold: string;
  ci95: Record<'balancedAccuracy' | 'sensitivity' | 'specificity' | 'auc', Interval | null>;
  /** How the intervals were made, in words. */
  ci95Method: string;
}

export interface CrossvalFigures {
  positiveClass: string;
  negativeClass: string;
  folds: FoldFigures[];
  /** Over the folds' figures (a fold without one, such as an AUC of a one-class fold, is left out). */
  mean: Record<keyof Figures, number | null>;
  /** Sample standard deviation (n - 1) over the folds; null with fewer than two. */
  sd: Record<keyof Figures, number | null>;
  pooled: PooledFigures;
}

interface Scored {
  isPositive: boolean[];
  scores: Float32Array;
  predictedPositive: boolean[];
  clusters: (string | undefined)[];
}

function scored(cells: readonly OutOfFoldCell[], positive: string, thresholdOf: (fold: number) => number): Scored {
  return {
    isPositive: cells.map((cell) => cell.label === positive),
    scores: Float32Array.from(cells, (cell) => cell.probability),
    predictedPositive: cells.map((cell) => decide(cell.probability, thresholdOf(cell.fold))),
    // A cell without a patient id is resampled alone.
    clusters: cells.map((cell) => (cell.patient === '' ? undefined : cell.patient)),
  };
}

function figuresOf({ isPositive, scores, predictedPositive }: Scored): Figures {
  // Index 0 = positive, 1 = negative: the two-class layout the metrics and the calibration read.
  const labels = Int32Array.from(isPositive, (p) => (p ? 0 : 1));
  const predicted = Int32Array.from(predictedPositive, (p) => (p ? 0 : 1));
  const screening = screeningMetrics(labels, predicted, 0, scores);
  const probabilities = new Float32Array(scores.length * 2);
  scores.forEach((p, i) => {
    probabilities[2 * i] = p;
    probabilities[2 * i + 1] = 1 - p;
  });
  return {
    balancedAccuracy: screening.balancedAccuracy,
    sensitivity: screening.sensitivity,
    specificity: screening.specificity,
    auc: screening.auc,
    ece: calibrationOf(probabilities, labels, 2).ece,
  };
}

const distinctPatients = (cells: readonly OutOfFoldCell[]): number =>
  new Set(cells.filter((cell) => cell.patient !== '').map((cell) => cell.patient)).size;

/** The q-quantile of ascending `sorted` with linear interpolation (numpy's default, as bootstrap.ts). */
function quantile(sorted: Float64Array, q: number): number {
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

/**
 * Patient-bootstrap intervals of the sensitivity and the specificity (bootstrap.ts does the balanced accuracy and
 * the AUC): a replicate draws as many patients as there are, with replacement, each bringing all its cells.
 */
function rateIntervals(data: Scored): { sensitivity: Interval | null; specificity: Interval | null } {
  const index = new Map<string, number>();
  const clusterOf = data.clusters.map((id, cell) => {
    const key = id ?? `\0${cell}`;
    if (!index.has(key)) index.set(key, index.size);
    return index.get(key) as number;
  });
  const counts = Array.from({ length: index.size }, () => ({ tp: 0, fn: 0, tn: 0, fp: 0 }));
  clusterOf.forEach((cluster, cell) => {
    const c = counts[cluster];
    const key = data.isPositive[cell]
      ? data.predictedPositive[cell]
        ? 'tp'
        : 'fn'
      : data.predictedPositive[cell]
        ? 'fp'
        : 'tn';
    c[key]++;
  });
  const random = seedrandom.alea(BOOTSTRAP_SEED);
  const sensitivities: number[] = [];
  const specificities: number[] = [];
  for (let r = 0; r < BOOTSTRAP_REPLICATES; r++) {
    const total = { tp: 0, fn: 0, tn: 0, fp: 0 };
    for (let draw = 0; draw < counts.length; draw++) {
      const c = counts[Math.floor(random() * counts.length)];
      total.tp += c.tp;
      total.fn += c.fn;
      total.tn += c.tn;
      total.fp += c.fp;
    }
    if (total.tp + total.fn > 0) sensitivities.push(total.tp / (total.tp + total.fn));
    if (total.tn + total.fp > 0) specificities.push(total.tn / (total.tn + total.fp));
  }
  const interval = (values: number[]): Interval | null => {
    // As bootstrap.ts: more than a tenth of the replicates without the class, and the interval says nothing.
    if (values.length < 0.9 * BOOTSTRAP_REPLICATES) return null;
    const sorted = Float64Array.from(values).sort();
    return { lower: quantile(sorted, 0.025), upper: quantile(sorted, 0.975) };
  };
  return { sensitivity: interval(sensitivities), specificity: interval(specificities) };
}

function meanAndSd(values: (number | null)[]): { mean: number | null; sd: number | null } {
  const present = values.filter((v): v is number => v !== null);
  if (present.length === 0) return { mean: null, sd: null };
  const mean = present.reduce((a, b) => a + b, 0) / present.length;
  if (present.length < 2) return { mean, sd: null };
  const variance = present.reduce((a, v) => a + (v - mean) ** 2, 0) / (present.length - 1);
  return { mean, sd: Math.sqrt(variance) };
}

/** One fold's figures, on the cells it held out (those of `cells` in that fold). */
export function foldFigures(cells: readonly OutOfFoldCell[], model: FoldModel, positive: string): FoldFigures {
  const own = cells.filter((cell) => cell.fold === model.fold);
  return {
    ...model,
    cells: own.length,
    patients: distinctPatients(own),
    ...figuresOf(scored(own, positive, () => model.threshold)),
  };
}

/** Every figure of the cross-validation: per fold, mean and sd over folds, pooled with patient intervals. */
export function crossvalFigures(
  cells: readonly OutOfFoldCell[],
  models: readonly FoldModel[],
  classes: { positive: string; negative: string },
): CrossvalFigures {
  const thresholds = new Map(models.map((model) => [model.fold, model.threshold]));
  const thresholdOf = (fold: number) => thresholds.get(fold) ?? 0.5;
  const folds = models.map((model) => foldFigures(cells, model, classes.positive));
  const spread = FIGURE_KEYS.map((key) => [key, meanAndSd(folds.map((fold) => fold[key]))] as const);
  const all = scored(cells, classes.positive, thresholdOf);
  const patientBootstrap = clusterBootstrap(all);
  const rates = rateIntervals(all);
  const distinctThresholds = [...new Set(models.map((model) => model.threshold))];
  const patients = distinctPatients(cells);
  const units = patients > 0 ? `${patients} patients` : `${cells.length} cells (no patient ids)`;
  return {
    positiveClass: classes.positive,
    negativeClass: classes.negative,
    folds,
    mean: Object.fromEntries(spread.map(([key, s]) => [key, s.mean])) as CrossvalFigures['mean'],
    sd: Object.fromEntries(spread.map(([key, s]) => [key, s.sd])) as CrossvalFigures['sd'],
    pooled: {
      cells: cells.length,
      patients,
      threshold: distinctThresholds.length === 1 ? String(distinctThresholds[0]) : "each fold's own",
      ...figuresOf(all),
      ci95: {
        balancedAccuracy: patientBootstrap.balancedAccuracy,
        sensitivity: rates.sensitivity,
        specificity: rates.specificity,
        auc: patientBootstrap.auc,
      },
      ci95Method: `percentile bootstrap over ${units}, ${BOOTSTRAP_REPLICATES} replicates`,
    },
  };
}

/** The ROC curve of each fold's held-out cells and of all of them pooled (null where a class is missing). */
export function crossvalRocCurves(
  cells: readonly OutOfFoldCell[],
  folds: readonly number[],
  positive: string,
): { folds: { fold: number; curve: RocPoint[] | null }[]; pooled: RocPoint[] | null } {
  const curveOf = (some: readonly OutOfFoldCell[]) =>
    rocCurve(
      some.map((cell) => cell.probability),
      some.map((cell) => cell.label === positive),
    );
  return {
    folds: folds.map((fold) => ({ fold, curve: curveOf(cells.filter((cell) => cell.fold === fold)) })),
    pooled: curveOf(cells),
  };
}

/** Two cross-validations of the same cells and folds: each one's figures on the folds both finished, and b - a. */
export interface CrossvalComparison {
  /** The folds both runs have finished: the figures below are over their cells alone. */
  folds: number[];
  a: CrossvalFigures;
  b: CrossvalFigures;
  /** Pooled b - a with paired patient-bootstrap intervals. */
  difference: PairedDifferences;
}

/**
 * Recipe b against recipe a, each cross-validated on the same cells in the same folds: their figures over the folds
 * both have finished, and the pooled difference with intervals from resampling patients, the same patients for both
 * (so what is hard for both cancels out). Throws a RangeError when a cell has another label or patient in b.
 */
export function compareCrossvals(
  a: { cells: readonly OutOfFoldCell[]; models: readonly FoldModel[] },
  b: { cells: readonly OutOfFoldCell[]; models: readonly FoldModel[] },
  classes: { positive: string; negative: string },
): CrossvalComparison {
  const finishedInB = new Set(b.models.map((model) => model.fold));
  const folds = a.models.map((model) => model.fold).filter((fold) => finishedInB.has(fold));
  const inFolds = (cells: readonly OutOfFoldCell[]) => cells.filter((cell) => folds.includes(cell.fold));
  const bByFile = new Map(inFolds(b.cells).map((cell) => [cell.file, cell]));
  // Cells both runs scored, in a's order; b's the same cells in the same order.
  const cellsA = inFolds(a.cells).filter((cell) => bByFile.has(cell.file));
  const cellsB = cellsA.map((cell) => bByFile.get(cell.file) as OutOfFoldCell);
  const mismatch = cellsA.findIndex(
    (cell, i) => cell.label !== cellsB[i].label || cell.patient !== cellsB[i].patient || cell.fold !== cellsB[i].fold,
  );
  if (mismatch >= 0)
    throw new RangeError(
      `${cellsA[mismatch].file} has another label, patient or fold in the second run: not the same cross-validation`,
    );
  const modelsIn = (models: readonly FoldModel[]) => models.filter((model) => folds.includes(model.fold));
  const thresholdsOf = (models: readonly FoldModel[]) => {
    const thresholds = new Map(models.map((model) => [model.fold, model.threshold]));
    return (fold: number) => thresholds.get(fold) ?? 0.5;
  };
  return {
    folds,
    a: crossvalFigures(cellsA, modelsIn(a.models), classes),
    b: crossvalFigures(cellsB, modelsIn(b.models), classes),
    difference: pairedClusterBootstrap(
      scored(cellsA, classes.positive, thresholdsOf(a.models)),
      scored(cellsB, classes.positive, thresholdsOf(b.models)),
    ),
  };
}
