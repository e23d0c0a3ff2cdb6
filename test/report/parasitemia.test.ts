import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { formatParasitemia, formatPercent, formatSlideSummary } from '../../src/report/parasitemia.js';
import { summariseSlide } from '../../src/stats/parasitemia.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { cellImages } from '../support/images.js';
import { IMAGE_SIZE, nodeInputs, predictRows, writeTinyModel } from '../support/models.js';

/** n cells of which `k` have P(positive) 0.9 and the rest 0.1. */
const slide = (k: number, n: number): number[] => Array.from({ length: n }, (_, i) => (i < k ? 0.9 : 0.1));

describe('formatting', () => {
  it('has no parasitemia to print for an empty slide', () => {
    expect(formatParasitemia(summariseSlide([], 0.5))).toBe('n/a (no cells)');
  });

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
