import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ensemble, main, positiveProbabilities, scores, sharedMistakes } from '../../scripts/ensemble.js';
import { runScript } from '../../scripts/run-script.js';
import { makeTempDir, removeDir } from '../support/temp.js';

const P = 'Parasitized';
const cells = ['Parasitized/p1', 'Parasitized/p2', 'Parasitized/p3', 'Uninfected/u1', 'Uninfected/u2', 'Uninfected/u3'];
const file = (cell: string) => `data/testing/${cell}.png`;

/** `predict --json` of a model giving these P(Parasitized): each row names its label and that label's probability. */
const predictJson = (pParasitized: number[]) =>
  pParasitized.map((p, i) =>
    p >= 0.5
      ? { file: file(cells[i]), label: P, probability: p }
      : { file: file(cells[i]), label: 'Uninfected', probability: Number((1 - p).toFixed(6)) },
  );

// A misses p2 and flags u2; B misses p2 and p3 and flags u3. Their mean: p1 .8, p2 .425, p3 .55, u1 .2, u2 .45,
// u3 .375, which misses only p2.
const A = [0.9, 0.4, 0.8, 0.1, 0.6, 0.2];
const B = [0.7, 0.45, 0.3, 0.3, 0.3, 0.55];

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('malaria-ensemble-');
});
afterAll(async () => removeDir(dir));

describe('ensemble', () => {
  it('reads P(positive) back from each label and its probability', () => {
    const a = positiveProbabilities(predictJson(A), P, 'a.json');
    A.forEach((p, i) => expect(a.get(file(cells[i]))).toBeCloseTo(p, 6));
  });

  it('averages the models per file and scores the mean against the class folders', () => {
    const models = [predictJson(A), predictJson(B)].map((json, i) => positiveProbabilities(json, P, `${i}`));
    expect(scores(models[0], P, 0.5)).toEqual({ sensitivity: 2 / 3, specificity: 2 / 3, balancedAccuracy: 2 / 3 });
    expect(scores(models[1], P, 0.5).balancedAccuracy).toBeCloseTo(0.5, 12);
    const mean = ensemble(models, ['a', 'b']);
    expect(mean.get(file('Parasitized/p3'))).toBeCloseTo(0.55, 6);
    expect(scores(mean, P, 0.5)).toEqual({ sensitivity: 2 / 3, specificity: 1, balancedAccuracy: (2 / 3 + 1) / 2 });
    expect(sharedMistakes(models, P, 0.5)).toEqual({ all: 1, any: 4 });
  });

  it('refuses models that classified different files', () => {
    const a = positiveProbabilities(predictJson(A), P, 'a');
    const b = positiveProbabilities(predictJson(B).slice(1), P, 'b');
    expect(() => ensemble([a, b], ['a.json', 'b.json'])).toThrow('b.json and a.json classified different files');
  });

  it('prints one line per model and the ensemble’s; a failed file in a JSON is one error line', async () => {
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.json');
    await fsp.writeFile(a, JSON.stringify(predictJson(A)));
    await fsp.writeFile(b, JSON.stringify(predictJson(B)));
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
    vi.spyOn(console, 'error').mockImplementation((line: string) => void err.push(line));
    try {
      await runScript('ensemble', () => main([a, b]));
      expect(out).toEqual([
        `${a}: balanced accuracy 66.67% (sensitivity 66.67%, specificity 66.67%)`,
        `${b}: balanced accuracy 50.00% (sensitivity 33.33%, specificity 66.67%)`,
        'ensemble of 2 (mean P(Parasitized)): balanced accuracy 83.33% (sensitivity 66.67%, specificity 100.00%)',
        'cells every model gets wrong: 1; at least one: 4; of 6',
      ]);
      await fsp.writeFile(b, JSON.stringify([...predictJson(B), { file: 'x.png', error: 'cannot decode' }]));
      process.exitCode = undefined;
      await runScript('ensemble', () => main([a, b]));
      expect(process.exitCode).toBe(2);
      expect(err).toHaveLength(1);
      expect(err[0]).toMatch(/^ensemble: .*b\.json: .*x\.png.* is not a classified file/);
    } finally {
      process.exitCode = undefined;
      vi.restoreAllMocks();
    }
  });
});
