import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import {
  BOOTSTRAP_REPLICATES,
  clusterBootstrap,
  MAX_SKIPPED_FRACTION,
  pairedClusterBootstrap,
  prepareBootstrap,
  type BootstrapInput,
} from '../../src/stats/bootstrap.js';
import { rocAuc } from '../../src/stats/metrics.js';

interface Cells {
  isPositive: boolean[];
  scores: number[];
  predictedPositive: boolean[];
  clusters: string[];
}

/**
 * `patients` patients of `perPatient` cells each, every cell positive with probability 1/2 and scored around 0.7
 * (positive) or 0.3 (negative) with noise, rounded to 2 decimals so that ties occur; decided at 0.5.
 */
function noisyCells(patients: number, perPatient: number, seed = 'cells'): Cells {
  const random = seedrandom(seed);
  const cells: Cells = { isPositive: [], scores: [], predictedPositive: [], clusters: [] };
  for (let p = 0; p < patients; p++) {
    for (let c = 0; c < perPatient; c++) {
      const positive = random() < 0.5;
      const score = Math.round(100 * Math.min(1, Math.max(0, (positive ? 0.7 : 0.3) + (random() - 0.5) * 0.8))) / 100;
      cells.isPositive.push(positive);
      cells.scores.push(score);
      cells.predictedPositive.push(score >= 0.5);
      cells.clusters.push(`P${p}`);
    }
  }
  return cells;
}

/** Balanced accuracy and AUC of the full data, computed directly. */
function pointEstimates(cells: Omit<BootstrapInput, 'clusters'>): { balancedAccuracy: number; auc: number } {
  let tp = 0;
  let positives = 0;
  let tn = 0;
  let negatives = 0;
  for (let i = 0; i < cells.isPositive.length; i++) {
    if (cells.isPositive[i]) {
      positives++;
      if (cells.predictedPositive[i]) tp++;
    } else {
      negatives++;
      if (!cells.predictedPositive[i]) tn++;
    }
  }
  return {
    balancedAccuracy: (tp / positives + tn / negatives) / 2,
    auc: rocAuc(cells.scores, cells.isPositive) as number,
  };
}

const width = (interval: { lower: number; upper: number } | null): number =>
  interval === null ? Number.NaN : interval.upper - interval.lower;

describe('prepareBootstrap', () => {
  it('gives, for any cluster multiplicities, the statistics of the data with each cluster repeated that often', () => {
    const cells = noisyCells(12, 7);
    const prepared = prepareBootstrap(cells);
    expect(prepared.clusterCount).toBe(12);
    const random = seedrandom('weights');
    for (let trial = 0; trial < 20; trial++) {
      const weights = Array.from({ length: 12 }, () => Math.floor(random() * 4)); // 0 to 3 copies of each patient
      const expanded = { isPositive: [] as boolean[], scores: [] as number[], predictedPositive: [] as boolean[] };
      cells.clusters.forEach((cluster, i) => {
        for (let copy = 0; copy < weights[Number(cluster.slice(1))]; copy++) {
          expanded.isPositive.push(cells.isPositive[i]);
          expanded.scores.push(cells.scores[i]);
          expanded.predictedPositive.push(cells.predictedPositive[i]);
        }
      });
      const statistics = prepared.statisticsFor(weights);
      const hasBoth = expanded.isPositive.includes(true) && expanded.isPositive.includes(false);
      if (!hasBoth) {
        expect(statistics).toBeNull();
        continue;
      }
      const expected = pointEstimates(expanded);
      expect(statistics?.balancedAccuracy).toBeCloseTo(expected.balancedAccuracy, 12);
      expect(statistics?.auc).toBeCloseTo(expected.auc, 12);
    }
  });

  it('makes every cell without a cluster id a cluster of its own', () => {
    const cells = noisyCells(3, 4);
    const clusters = cells.clusters.map((id, i) => (i % 2 === 0 ? undefined : id));
    const prepared = prepareBootstrap({ ...cells, clusters });
    expect(prepared.unnamed).toBe(6);
    expect(prepared.clusterCount).toBe(6 + 3);
    expect(prepareBootstrap({ ...cells, clusters: undefined }).clusterCount).toBe(12);
  });

  it('refuses inputs of different lengths', () => {
    const cells = noisyCells(2, 3);
    expect(() => prepareBootstrap({ ...cells, scores: cells.scores.slice(1) })).toThrow(RangeError);
    expect(() => prepareBootstrap({ ...cells, clusters: cells.clusters.slice(1) })).toThrow(RangeError);
  });
});

describe('clusterBootstrap', () => {
  it('gives intervals around the point estimates, by patient and by cell', () => {
    const cells = noisyCells(30, 20);
    const point = pointEstimates(cells);
    for (const clusters of [cells.clusters, undefined]) {
      const result = clusterBootstrap({ ...cells, clusters }, { replicates: 500 });
      expect(result.replicates).toBe(500);
      expect(result.skipped).toBe(0);
      for (const key of ['balancedAccuracy', 'auc'] as const) {
        const interval = result[key];
        expect(interval, key).not.toBeNull();
        expect(interval!.lower, key).toBeLessThan(point[key]);
        expect(interval!.upper, key).toBeGreaterThan(point[key]);
        expect(interval!.lower).toBeGreaterThanOrEqual(0);
        expect(interval!.upper).toBeLessThanOrEqual(1);
      }
    }
  });

  it('is wider over patients than over cells when a patient’s cells are copies of one another', () => {
    // 25 patients; all 16 cells of a patient share its class, score and decision: 25 observations, not 400.
    const base = noisyCells(25, 1, 'patients');
    const copies = 16;
    const repeat = <T>(values: T[]): T[] => values.flatMap((value) => Array<T>(copies).fill(value));
    const cells = {
      isPositive: repeat(base.isPositive),
      scores: repeat(base.scores),
      predictedPositive: repeat(base.predictedPositive),
    };
    const byPatient = clusterBootstrap({ ...cells, clusters: repeat(base.clusters) }, { replicates: 1000 });
    const byCell = clusterBootstrap(cells, { replicates: 1000 });
    expect(byPatient.clusters).toBe(25);
    expect(byCell.clusters).toBe(400);
    // The cell bootstrap pretends to 16 times the data: about 4 times narrower.
    expect(width(byPatient.balancedAccuracy)).toBeGreaterThan(2 * width(byCell.balancedAccuracy));
    expect(width(byPatient.auc)).toBeGreaterThan(2 * width(byCell.auc));
  });

  it('gives [1, 1] for a perfect classifier', () => {
    const cells = noisyCells(10, 10);
    const perfect = { ...cells, predictedPositive: cells.isPositive, scores: cells.isPositive.map((p) => (p ? 1 : 0)) };
    const result = clusterBootstrap(perfect, { replicates: 200 });
    expect(result.balancedAccuracy).toEqual({ lower: 1, upper: 1 });
    expect(result.auc).toEqual({ lower: 1, upper: 1 });
  });

  it('is reproducible: the same seed gives the same intervals, another seed others', () => {
    const cells = noisyCells(20, 10);
    const first = clusterBootstrap(cells, { replicates: 300 });
    expect(clusterBootstrap(cells, { replicates: 300 })).toEqual(first);
    const reseeded = clusterBootstrap(cells, { replicates: 300, seed: 'another seed' });
    expect(reseeded.balancedAccuracy).not.toEqual(first.balancedAccuracy);
    expect(reseeded.auc).not.toEqual(first.auc);
  });

  it('returns null intervals when a class is absent', () => {
    const cells = noisyCells(5, 4);
    const negatives = { ...cells, isPositive: cells.isPositive.map(() => false) };
    const result = clusterBootstrap(negatives, { replicates: 100 });
    expect(result).toMatchObject({ balancedAccuracy: null, auc: null, replicates: 100, skipped: 100 });
    expect(clusterBootstrap({ isPositive: [], scores: [], predictedPositive: [] }).balancedAccuracy).toBeNull();
  });

  it('skips replicates without a class, and withholds the intervals when they are too many', () => {
    const cells = noisyCells(30, 5);
    const positivesIn = (patients: number) => ({
      ...cells,
      isPositive: cells.clusters.map((id) => Number(id.slice(1)) < patients),
    });
    // 3 of 30 patients hold the positives: a replicate misses all three with probability (27/30)^30 ~ 4%.
    const few = clusterBootstrap(positivesIn(3), { replicates: 1000 });
    expect(few.skipped).toBeGreaterThan(0);
    expect(few.skipped).toBeLessThanOrEqual(MAX_SKIPPED_FRACTION * 1000);
    expect(few.balancedAccuracy).not.toBeNull();
    expect(few.auc).not.toBeNull();
    // 1 of 30: missed with probability (29/30)^30 ~ 36%, far above the 10% allowed.
    const one = clusterBootstrap(positivesIn(1), { replicates: 1000 });
    expect(one.skipped).toBeGreaterThan(MAX_SKIPPED_FRACTION * 1000);
    expect(one.balancedAccuracy).toBeNull();
    expect(one.auc).toBeNull();
  });

  it('refuses a replicate count or level that makes no sense', () => {
    const cells = noisyCells(2, 3);
    expect(() => clusterBootstrap(cells, { replicates: 0 })).toThrow(RangeError);
    expect(() => clusterBootstrap(cells, { level: 1 })).toThrow(RangeError);
  });

  it(`runs ${BOOTSTRAP_REPLICATES} replicates over 2,400 cells of one cell each, keeping every replicate`, () => {
    // Its speed is not a test's business (BENCHMARKS.md); this is the size a fold of the shared data has.
    const result = clusterBootstrap(noisyCells(2400, 1, 'timing'));
    expect(result.replicates).toBe(BOOTSTRAP_REPLICATES);
    expect(result.skipped).toBe(0);
    expect(result.clusters).toBe(2400);
    expect(result.auc).not.toBeNull();
  });
});

describe('pairedClusterBootstrap', () => {
  const a = noisyCells(40, 10, 'paired');
  /** a with the first wrongly decided cell of every patient decided right: a little better on each patient. */
  const better = (): Cells => {
    const fixed = new Set<string>();
    const predictedPositive = a.predictedPositive.map((called, i) => {
      if (called === a.isPositive[i] || fixed.has(a.clusters[i])) return called;
      fixed.add(a.clusters[i]);
      return a.isPositive[i];
    });
    return { ...a, predictedPositive };
  };

  it('finds no difference, with an interval of exactly 0, between a model and itself', () => {
    const same = pairedClusterBootstrap(a, a, { replicates: 300 });
    expect(same.balancedAccuracy.difference).toBe(0);
    expect(same.balancedAccuracy.interval).toEqual({ lower: 0, upper: 0 });
    expect(same.auc.interval).toEqual({ lower: 0, upper: 0 });
    expect(same.clusters).toBe(40);
  });

  it('gives each model’s figures and b - a, with an interval narrower than either model’s own', () => {
    const b = better();
    const paired = pairedClusterBootstrap(a, b, { replicates: 500 });
    const direct = { a: pointEstimates(a), b: pointEstimates(b) };
    expect(paired.balancedAccuracy.a).toBeCloseTo(direct.a.balancedAccuracy, 12);
    expect(paired.balancedAccuracy.b).toBeCloseTo(direct.b.balancedAccuracy, 12);
    expect(paired.balancedAccuracy.difference).toBeGreaterThan(0);
    const ci = paired.balancedAccuracy.interval!;
    expect(ci.lower).toBeGreaterThan(0);
    expect(ci.lower).toBeLessThanOrEqual(paired.balancedAccuracy.difference);
    expect(ci.upper).toBeGreaterThanOrEqual(paired.balancedAccuracy.difference);
    // What is hard for both cancels out: the paired interval is narrower than a's own.
    const own = clusterBootstrap(a, { replicates: 500 }).balancedAccuracy!;
    expect(ci.upper - ci.lower).toBeLessThan(own.upper - own.lower);
    // The scores were not changed: the AUCs are equal in every replicate.
    expect(paired.auc.difference).toBe(0);
    expect(paired.auc.interval).toEqual({ lower: 0, upper: 0 });
  });

  it('refuses two models on other cells', () => {
    const other = { ...a, isPositive: a.isPositive.map((positive, i) => (i === 0 ? !positive : positive)) };
    expect(() => pairedClusterBootstrap(a, other)).toThrow(RangeError);
    const moved = { ...a, clusters: a.clusters.map((id, i) => (i === 0 ? 'elsewhere' : id)) };
    expect(() => pairedClusterBootstrap(a, moved)).toThrow(RangeError);
  });
});
