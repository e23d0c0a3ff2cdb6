import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import {
  formatParasitemia,
  formatPercent,
  formatSlideSummary,
  isPositive,
  needsReview,
  summariseSlide,
} from '../../src/stats/parasitemia.js';
import { predictAtThreshold } from '../../src/stats/metrics.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { cellImages } from '../support/images.js';
import { IMAGE_SIZE, nodeInputs, predictRows, writeTinyModel } from '../support/models.js';

/** n cells of which `k` have P(positive) 0.9 and the rest 0.1. */
const slide = (k: number, n: number): number[] => Array.from({ length: n }, (_, i) => (i < k ? 0.9 : 0.1));

describe('summariseSlide', () => {
  it('counts parasitized cells at the threshold, a tie counting as parasitized, and those near it', () => {
    const summary = summariseSlide([0.9, 0.5, 0.49, 0.1, 0.55], 0.5, 0.1);
    expect(summary.cells).toBe(5);
    expect(summary.parasitized).toBe(3);
    expect(summary.parasitemia).toBeCloseTo(0.6, 12);
    expect(summary.toReview).toBe(3); // 0.5, 0.49, 0.55
    expect(summary.threshold).toBe(0.5);
    expect(summary.reviewMargin).toBe(0.1);
  });

  it('decides exactly as predictAtThreshold (the rule evaluate and predict use)', () => {
    const p = [0, 0.2, 0.3, 0.3000001, 0.7, 1];
    for (const threshold of [0, 0.3, 0.5, 1]) {
      const evaluateSays = predictAtThreshold(p, threshold, 0);
      expect(p.map((value) => isPositive(value, threshold))).toEqual(Array.from(evaluateSays, (label) => label === 0));
      expect(summariseSlide(p, threshold).parasitized).toBe(evaluateSays.filter((label) => label === 0).length);
    }
  });

  // Reference intervals: Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score).
  it.each([
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ])('gives the Wilson 95%% interval of %i parasitized in %i cells', (k, n, lower, upper) => {
    const { parasitemia, ci95 } = summariseSlide(slide(k, n), 0.5);
    expect(parasitemia).toBeCloseTo(k / n, 12);
    expect(ci95?.lower).toBeCloseTo(lower, 4);
    expect(ci95?.upper).toBeCloseTo(upper, 4);
  });

  it('has no parasitemia and no interval for an empty slide', () => {
    const summary = summariseSlide([], 0.5);
    expect(summary).toMatchObject({ cells: 0, parasitized: 0, parasitemia: null, ci95: null, toReview: 0 });
    expect(formatParasitemia(summary)).toBe('n/a (no cells)');
  });

  it('refuses a threshold outside [0, 1] and non-finite probabilities', () => {
    expect(() => summariseSlide([0.5], 1.5)).toThrow(/threshold 1.5/);
    expect(() => summariseSlide([0.5], Number.NaN)).toThrow(/threshold/);
    expect(() => summariseSlide([0.5, Number.NaN], 0.5)).toThrow(/cell 1 .*non-finite/);
  });
});

describe('needsReview', () => {
  it('flags probabilities strictly within the margin of the threshold', () => {
    expect(needsReview(0.45, 0.5, 0.1)).toBe(true);
    expect(needsReview(0.5, 0.5, 0.1)).toBe(true);
    expect(needsReview(0.35, 0.5, 0.1)).toBe(false);
    expect(needsReview(0.95, 0.9, 0.1)).toBe(true);
    expect(needsReview(0.75, 0.9)).toBe(false); // default margin 0.1
  });
});

describe('formatting', () => {
  it('prints percentages with one decimal', () => {
    expect(formatPercent(0.4351)).toBe('43.5%');
    expect(formatPercent(0)).toBe('0.0%');
    expect(formatPercent(1)).toBe('100.0%');
  });

  it('prints the summary lines predict --summary shows', () => {
    const lines = formatSlideSummary(summariseSlide(slide(81, 263), 0.5), 'Parasitized');
    expect(lines).toEqual([
      'slide summary: 263 cells, 81 Parasitized',
      'parasitemia: 30.8% (95% CI 25.5% to 36.6%, Wilson)',
      'threshold: P(Parasitized) >= 0.5',
      'near the threshold (within 0.1): 0 cells to check by eye',
    ]);
  });
});

describe('malaria predict --summary (CLI)', () => {
  let work: string;
  let cells: string;
  let expected: string[];

  beforeAll(async () => {
    await selectBackend('cpu');
    work = await makeTempDir('malaria-summary-');
    cells = path.join(work, 'cells');
    const files = await cellImages(cells, 4);
    const model = await writeTinyModel(path.join(work, 'model'), files, { threshold: 0.45 });
    const pPositive = predictRows(model, await nodeInputs(files, IMAGE_SIZE), files.length, IMAGE_SIZE).map(
      (row) => row[0],
    );
    model.dispose();
    expected = formatSlideSummary(summariseSlide(pPositive, 0.45), 'Parasitized');
  });
  afterAll(async () => removeDir(work));

  it('prints the slide summary, computed from the same probabilities, after the per-image table', async () => {
    // The built CLI, as a user runs it (`npm test` builds first).
    const { stdout } = await promisify(execFile)(process.execPath, [
      'bin/malaria.js',
      'predict',
      cells,
      '--model-dir',
      path.join(work, 'model'),
      '--backend',
      'cpu',
      '--summary',
    ]);
    const lines = stdout.trimEnd().split('\n');
    expect(lines.slice(-4)).toEqual(expected);
    expect(expected[0]).toMatch(/^slide summary: 11 cells, ([1-9]|10) Parasitized$/);
    // The table comes first: its Parasitized rows are the summary's count.
    const table = lines.slice(0, -5);
    expect(table.filter((line) => /\sParasitized\s/.test(line))).toHaveLength(
      Number(/(\d+) Parasitized$/.exec(expected[0])?.[1]),
    );
  });
});
