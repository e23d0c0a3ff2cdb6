// Percentile bootstrap over clusters (patients) for the balanced accuracy and the ROC AUC of a screening decision.
// Cells of one patient are correlated and users care about new patients, so whole patients are resampled: a
// replicate draws as many patients as there are, with replacement, and each drawn patient brings all its cells.
import seedrandom from 'seedrandom';
import type { Interval } from './metrics.js';

export const BOOTSTRAP_REPLICATES = 2000;
/** Fixed, so the same predictions always give the same report. */
export const BOOTSTRAP_SEED = 'malaria-bootstrap';
/** More replicates than this without one of the classes, and the intervals are withheld (null). */
export const MAX_SKIPPED_FRACTION = 0.1;

export interface BootstrapInput {
  /** true where the cell's true class is the positive one. */
  isPositive: ArrayLike<boolean>;
  /** P(positive) per cell (ranks the cells for the AUC). */
  scores: ArrayLike<number>;
  /** true where the cell was called positive (at the threshold in force). */
  predictedPositive: ArrayLike<boolean>;
  /** Cluster (patient) id per cell; undefined (or no array): the cell is a cluster of its own. */
  clusters?: readonly (string | undefined)[];
}

export interface BootstrapOptions {
  replicates?: number;
  seed?: string;
  /** Central coverage of the intervals (default 0.95). */
  level?: number;
}

export interface BootstrapIntervals {
  /** null when a class is absent from the data or more than MAX_SKIPPED_FRACTION of replicates lacked one. */
  balancedAccuracy: Interval | null;
  auc: Interval | null;
  /** Units resampled: distinct cluster ids plus the cells without one. */
  clusters: number;
  /** Cells without a cluster id (each resampled alone). */
  unnamed: number;
  replicates: number;
  /** Replicates left out because they held no positive or no negative cell. */
  skipped: number;
}

/** The two statistics of one (re)sample. */
export interface BootstrapStatistics {
  balancedAccuracy: number;
  auc: number;
}

/**
 * The data arranged once so each replicate costs O(cells + clusters) and no sort: cluster index per cell, the
 * confusion counts per cluster, and the cells in score order cut into groups of tied scores.
 */
export interface PreparedBootstrap {
  clusterCount: number;
  unnamed: number;
  /** Statistics when cluster k is taken weights[k] times (0 = left out); null when a class is absent. */
  statisticsFor(weights: ArrayLike<number>): BootstrapStatistics | null;
}

export function prepareBootstrap(input: BootstrapInput): PreparedBootstrap {
  const { isPositive, scores, predictedPositive, clusters } = input;
  const n = isPositive.length;
  if (scores.length !== n || predictedPositive.length !== n || (clusters && clusters.length !== n)) {
    throw new RangeError(
      `bootstrap needs one score, decision and cluster per cell: ${n} labels, ${scores.length} scores, ` +
        `${predictedPositive.length} decisions, ${clusters?.length ?? n} clusters`,
    );
  }
  const clusterOf = new Int32Array(n);
  const index = new Map<string, number>();
  let clusterCount = 0;
  let unnamed = 0;
  for (let i = 0; i < n; i++) {
    const id = clusters?.[i];
    if (id === undefined) {
      unnamed++;
      clusterOf[i] = clusterCount++;
      continue;
    }
    let k = index.get(id);
    if (k === undefined) index.set(id, (k = clusterCount++));
    clusterOf[i] = k;
  }
  // Per cluster: positives found (tp), positives, negatives cleared (tn), negatives.
  const tp = new Float64Array(clusterCount);
  const positives = new Float64Array(clusterCount);
  const tn = new Float64Array(clusterCount);
  const negatives = new Float64Array(clusterCount);
  for (let i = 0; i < n; i++) {
    const k = clusterOf[i];
    if (isPositive[i]) {
      positives[k]++;
      if (predictedPositive[i]) tp[k]++;
    } else {
      negatives[k]++;
      if (!predictedPositive[i]) tn[k]++;
    }
  }
  // Cells by ascending score; groupEnd[g] is one past the last cell of tie group g in `order`.
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const groupEnds: number[] = [];
  for (let i = 1; i <= n; i++) if (i === n || scores[order[i]] !== scores[order[i - 1]]) groupEnds.push(i);
  // The cluster and class of each cell in score order, so the replicate loop reads memory in sequence.
  const sortedCluster = Int32Array.from(order, (i) => clusterOf[i]);
  const sortedPositive = Uint8Array.from(order, (i) => (isPositive[i] ? 1 : 0));

  return {
    clusterCount,
    unnamed,
    statisticsFor(weights) {
      let found = 0;
      let allPositive = 0;
      let cleared = 0;
      let allNegative = 0;
      for (let k = 0; k < clusterCount; k++) {
        const w = weights[k];
        if (w === 0) continue;
        found += w * tp[k];
        allPositive += w * positives[k];
        cleared += w * tn[k];
        allNegative += w * negatives[k];
      }
      if (allPositive === 0 || allNegative === 0) return null;
      // Mann-Whitney with multiplicities: each positive of a tie group beats the negatives below it and ties half
      // of those in its group.
      let pairs = 0;
      let negativesBelow = 0;
      let start = 0;
      for (const end of groupEnds) {
        let groupPositive = 0;
        let groupNegative = 0;
        for (let j = start; j < end; j++) {
          const w = weights[sortedCluster[j]];
          if (sortedPositive[j]) groupPositive += w;
          else groupNegative += w;
        }
        pairs += groupPositive * (negativesBelow + groupNegative / 2);
        negativesBelow += groupNegative;
        start = end;
      }
      return {
        balancedAccuracy: (found / allPositive + cleared / allNegative) / 2,
        auc: pairs / (allPositive * allNegative),
      };
    },
  };
}

/** The q-quantile of ascending `sorted` with linear interpolation (numpy's default). */
function quantile(sorted: Float64Array, q: number): number {
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

function percentileInterval(values: Float64Array, level: number): Interval {
  const sorted = values.slice().sort();
  const tail = (1 - level) / 2;
  return { lower: quantile(sorted, tail), upper: quantile(sorted, 1 - tail) };
}

/**
 * `replicates` draws of as many clusters as there are, with replacement (seeded), and `statistics` of each; the
 * draws where it is null (a class missing) are left out. The first `kept` values of each array are the statistics.
 */
function resample(
  clusters: number,
  replicates: number,
  seed: string | undefined,
  statistics: (weights: Float64Array) => BootstrapStatistics | null,
): { balanced: Float64Array; aucs: Float64Array; kept: number } {
  const random = seedrandom.alea(seed ?? BOOTSTRAP_SEED);
  const weights = new Float64Array(clusters);
  const balanced = new Float64Array(replicates);
  const aucs = new Float64Array(replicates);
  let kept = 0;
  for (let r = 0; r < replicates; r++) {
    weights.fill(0);
    for (let draw = 0; draw < clusters; draw++) weights[Math.floor(random() * clusters)]++;
    const values = statistics(weights);
    if (values === null) continue;
    balanced[kept] = values.balancedAccuracy;
    aucs[kept] = values.auc;
    kept++;
  }
  return { balanced, aucs, kept };
}

/**
 * Percentile bootstrap intervals of the balanced accuracy (mean of sensitivity and specificity at the decisions
 * given) and the ROC AUC, resampling clusters with replacement. Seeded: the same input gives the same intervals.
 */
export function clusterBootstrap(input: BootstrapInput, options: BootstrapOptions = {}): BootstrapIntervals {
  const replicates = options.replicates ?? BOOTSTRAP_REPLICATES;
  const level = options.level ?? 0.95;
  if (!Number.isSafeInteger(replicates) || replicates < 1)
    throw new RangeError(`replicates must be a whole number greater than 0, got ${replicates}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  const prepared = prepareBootstrap(input);
  const clusters = prepared.clusterCount;
  const withheld = { balancedAccuracy: null, auc: null, clusters, unnamed: prepared.unnamed, replicates, skipped: 0 };
  const weights = new Float64Array(clusters);
  weights.fill(1);
  // A class absent from the data: nothing to resample.
  if (prepared.statisticsFor(weights) === null) return { ...withheld, skipped: replicates };

  const { balanced, aucs, kept } = resample(clusters, replicates, options.seed, prepared.statisticsFor);
  const skipped = replicates - kept;
  if (skipped > MAX_SKIPPED_FRACTION * replicates) return { ...withheld, skipped };
  return {
    balancedAccuracy: percentileInterval(balanced.subarray(0, kept), level),
    auc: percentileInterval(aucs.subarray(0, kept), level),
    clusters,
    unnamed: prepared.unnamed,
    replicates,
    skipped,
  };
}

/** One statistic of two models on the same cells: each one's value and b minus a, with its interval. */
export interface PairedStatistic {
  a: number;
  b: number;
  difference: number;
  /** null when a class is absent or more than MAX_SKIPPED_FRACTION of the replicates lacked one. */
  interval: Interval | null;
}

export interface PairedDifferences {
  balancedAccuracy: PairedStatistic;
  auc: PairedStatistic;
  clusters: number;
  replicates: number;
  skipped: number;
}

/**
 * Two models' results on the same cells (same labels, same patients, cell by cell), compared: the difference
 * b - a of their balanced accuracies and AUCs, with percentile intervals from resampling whole patients and
 * taking the same draw for both. Paired, the interval leaves out what the two share (which patients are hard), so
 * it is much narrower than the two separate intervals: the question "is b worse than a on new patients?".
 */
export function pairedClusterBootstrap(
  a: BootstrapInput,
  b: BootstrapInput,
  options: BootstrapOptions = {},
): PairedDifferences {
  const n = a.isPositive.length;
  const same =
    b.isPositive.length === n &&
    Array.from({ length: n }).every(
      (_, i) => a.isPositive[i] === b.isPositive[i] && a.clusters?.[i] === b.clusters?.[i],
    );
  if (!same) throw new RangeError('a paired bootstrap needs both models on the same cells: same labels and patients');
  const replicates = options.replicates ?? BOOTSTRAP_REPLICATES;
  const level = options.level ?? 0.95;
  const first = prepareBootstrap(a);
  const second = prepareBootstrap(b);
  // Both number the clusters by first appearance in the same array, so weights[k] is one patient for both.
  const clusters = first.clusterCount;
  const weights = new Float64Array(clusters).fill(1);
  const whole = [first.statisticsFor(weights), second.statisticsFor(weights)];
  const statistic = (key: keyof BootstrapStatistics, interval: Interval | null): PairedStatistic => ({
    a: whole[0]?.[key] ?? Number.NaN,
    b: whole[1]?.[key] ?? Number.NaN,
    difference: (whole[1]?.[key] ?? Number.NaN) - (whole[0]?.[key] ?? Number.NaN),
    interval,
  });
  if (whole[0] === null || whole[1] === null)
    return {
      balancedAccuracy: statistic('balancedAccuracy', null),
      auc: statistic('auc', null),
      clusters,
      replicates,
      skipped: replicates,
    };
  const { balanced, aucs, kept } = resample(clusters, replicates, options.seed, (draw) => {
    const x = first.statisticsFor(draw);
    const y = second.statisticsFor(draw);
    if (x === null || y === null) return null;
    return { balancedAccuracy: y.balancedAccuracy - x.balancedAccuracy, auc: y.auc - x.auc };
  });
  const skipped = replicates - kept;
  const withheld = skipped > MAX_SKIPPED_FRACTION * replicates;
  return {
    balancedAccuracy: statistic(
      'balancedAccuracy',
      withheld ? null : percentileInterval(balanced.subarray(0, kept), level),
    ),
    auc: statistic('auc', withheld ? null : percentileInterval(aucs.subarray(0, kept), level)),
    clusters,
    replicates,
    skipped,
  };
}
