// runCrossval driven as a library on the bundled sample (200 cells of 102 patients) with a tiny network: the folds,
// one out-of-fold probability per unique cell, the fold models, crossval.json, resuming after a stop, and refusals.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { parseCsv } from '../../src/io/csv.js';
import { patientIdOf } from '../../src/dataset/patients.js';
import { hasCheckpoint } from '../../src/model/checkpoint.js';
import { loadModel } from '../../src/model/io.js';
import { PRESETS } from '../../src/model/presets.js';
import { findLabelSuspects } from '../../src/stats/label-issues.js';
import { silentReporter, type Reporter } from '../../src/report/reporter.js';
import { compareCrossvalRuns, crossvalSoFar, runCrossval, type CrossvalOptions } from '../../src/workflows/crossval.js';
import { copySample, SAMPLE_DIR, snapshotTree } from '../support/sample.js';
import { makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
const input = () => path.join(dir, 'cell_images');
/** A second copy of this sample image (same bytes, another name) must not become a second cell. */
const DUPLICATE = 'Uninfected/copy-of-first.png';

beforeAll(async () => {
  // One thread: the same steps give the same bits, so an interrupted run can be compared with a whole one.
  process.env.MALARIA_WASM_THREADS = '1';
  await selectBackend('wasm');
  dir = await makeTempDir('malaria-crossval-');
  const written = await copySample(input(), 100);
  const first = written.find((file) => file.startsWith('Uninfected/')) as string;
  await fsp.copyFile(path.join(input(), first), path.join(input(), DUPLICATE));
});

afterAll(async () => removeDir(dir));

// The tutorial's recipe on a tiny network for two epochs.
const options = (out: string, overrides: Partial<CrossvalOptions> = {}): CrossvalOptions => ({
  ...PRESETS.tutorial,
  input: input(),
  out,
  folds: 3,
  epochs: 2,
  lr: 0.05,
  imageSize: 16,
  stages: [1, 1, 1],
  filters: [4, 4, 8, 8],
  seed: 42,
  preset: 'tutorial',
  backend: 'wasm',
  ...overrides,
});

/** A reporter that keeps the result lines and notes (and may act on them). */
function recorder(onResult: (line: string) => void = () => undefined): Reporter & { lines: string[]; notes: string[] } {
  const lines: string[] = [];
  const notes: string[] = [];
  return {
    ...silentReporter,
    lines,
    notes,
    result: (text) => {
      lines.push(text);
      onResult(text);
    },
    detail: (text) => void lines.push(text),
    note: (text) => void notes.push(text),
  };
}

const readCsv = async (file: string) => parseCsv(await fsp.readFile(file, 'utf8'));
const whole = () => path.join(dir, 'whole');

describe('runCrossval', () => {
  it('gives every unique cell one out-of-fold probability from the fold that held its patient out', async () => {
    const report = recorder();
    const outcome = await runCrossval(options(whole()), { report });
    expect(outcome.stoppedEarly).toBe(false);
    expect(outcome.foldsDone).toBe(3);

    const [header, ...rows] = await readCsv(path.join(whole(), 'oof.csv'));
    expect(header).toEqual(['file', 'sha256', 'patient', 'label', 'fold', 'probability']);
    // 200 sample images plus a byte-identical copy: 200 cells, each once.
    expect(rows).toHaveLength(200);
    expect(new Set(rows.map((row) => row[1])).size).toBe(200);
    expect(rows.map((row) => row[0])).not.toContain(DUPLICATE);
    for (const [file, , patient, label, fold, probability] of rows) {
      expect(patient).toBe(patientIdOf(path.basename(file)));
      expect(label).toBe(file.split('/')[0]);
      expect(['1', '2', '3']).toContain(fold);
      expect(Number(probability)).toBeGreaterThanOrEqual(0);
      expect(Number(probability)).toBeLessThanOrEqual(1);
    }
    // Patient-disjoint: every patient's cells are in one fold.
    const foldsOf = new Map<string, Set<string>>();
    for (const [, , patient, , fold] of rows) foldsOf.set(patient, (foldsOf.get(patient) ?? new Set()).add(fold));
    expect(foldsOf.size).toBe(102);
    expect([...foldsOf.values()].every((folds) => folds.size === 1)).toBe(true);
    // Folds of about equal size: within a few cells (the sample's patients have 1 to 5 cells).
    const sizes = ['1', '2', '3'].map((fold) => rows.filter((row) => row[4] === fold).length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(5);

    // Each fold is a normal model folder, calibrated on its validation patients.
    for (const fold of [1, 2, 3]) {
      const { model, metadata } = await loadModel(path.join(whole(), `fold-${fold}`));
      model.dispose();
      expect(metadata.classNames).toEqual(['Parasitized', 'Uninfected']);
      expect(metadata.imageSize).toBe(16);
      const own = await readCsv(path.join(whole(), `fold-${fold}.csv`));
      expect(own.slice(1).map((row) => row[0])).toEqual(rows.filter((row) => row[4] === String(fold)).map((r) => r[0]));
    }
    expect(
      report.lines.filter((line) => /^\nfold \d\/3: training on \d+ cells of \d+ patients/.test(line)),
    ).toHaveLength(3);
    expect(report.notes.some((line) => /epoch 2\/2 done; (about .* left|no epoch left)/.test(line))).toBe(true);
  });

  it('writes crossval.json with per-fold, mean, sd and pooled figures (intervals over patients) and the ROC plot', async () => {
    const summary = JSON.parse(await fsp.readFile(path.join(whole(), 'crossval.json'), 'utf8'));
    expect(summary).toMatchObject({
      folds: 3,
      seed: 42,
      cells: 200,
      groupedBy: 'patient',
      positiveClass: 'Parasitized',
    });
    expect(summary.perFold).toHaveLength(3);
    const keys = ['balancedAccuracy', 'sensitivity', 'specificity', 'auc', 'ece'];
    for (const fold of summary.perFold) {
      for (const key of keys) expect(fold[key] === null || (fold[key] >= 0 && fold[key] <= 1), key).toBe(true);
      expect(fold.threshold).toBe(0.5);
    }
    expect(summary.perFold.map((fold: { cells: number }) => fold.cells).reduce((a: number, b: number) => a + b)).toBe(
      200,
    );
    const mean = summary.perFold.reduce((a: number, fold: { ece: number }) => a + fold.ece, 0) / 3;
    expect(summary.mean.ece).toBeCloseTo(mean, 12);
    expect(summary.sd.ece).toBeGreaterThanOrEqual(0);
    expect(summary.pooled).toMatchObject({ cells: 200, patients: 102 });
    expect(summary.pooled.ci95Method).toMatch(/bootstrap over 102 patients/);
    for (const key of ['balancedAccuracy', 'sensitivity', 'specificity', 'auc']) {
      const ci = summary.pooled.ci95[key];
      expect(ci, key).not.toBeNull();
      expect(ci.lower).toBeLessThanOrEqual(summary.pooled[key]);
      expect(ci.upper).toBeGreaterThanOrEqual(summary.pooled[key]);
    }
    const png = await fsp.readFile(path.join(whole(), 'roc.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('ends with the label review of its out-of-fold probabilities: suspects.csv, per patient, and the sheet', async () => {
    const [, ...oof] = await readCsv(path.join(whole(), 'oof.csv'));
    const rows = oof.map(([file, sha256, patient, label, fold, probability]) => ({
      file,
      sha256,
      patient,
      label,
      fold: Number(fold),
      probability: Number(probability),
    }));
    const expected = findLabelSuspects(rows, { positive: 'Parasitized', negative: 'Uninfected' }).suspects;
    const [header, ...suspects] = await readCsv(path.join(whole(), 'suspects.csv'));
    expect(header).toEqual(['file', 'sha256', 'patient', 'label', 'suggested', 'probability', 'margin']);
    expect(suspects.map((row) => row[0])).toEqual(expected.map((suspect) => suspect.file));
    for (const row of suspects) expect(row[4]).not.toBe(row[3]);
    const [, ...perPatient] = await readCsv(path.join(whole(), 'suspects-per-patient.csv'));
    expect(perPatient.reduce((sum, row) => sum + Number(row[2]), 0)).toBe(expected.length);
    expect(perPatient.reduce((sum, row) => sum + Number(row[1]), 0)).toBe(rows.length);
    const sheet = await fsp.readFile(path.join(whole(), 'review.png'));
    expect(sheet.subarray(1, 4).toString()).toBe('PNG');
  });

  it('stopped mid-fold, continues at that fold and epoch on a re-run and ends with the same oof.csv', async () => {
    const out = path.join(dir, 'stopped');
    const controller = new AbortController();
    let inFold2 = false;
    const first = recorder((line) => {
      if (line.startsWith('\nfold 2/3')) inFold2 = true;
      // After fold 2's first epoch is checkpointed: the run stops before its second.
      if (inFold2 && line.startsWith('Epoch 1/2 - ')) controller.abort();
    });
    let released = false;
    const stopped = await runCrossval(options(out), {
      report: first,
      interrupt: () => ({ signal: controller.signal, release: () => (released = true) }),
    });
    expect(stopped).toMatchObject({ stoppedEarly: true, foldsDone: 1 });
    expect(released).toBe(true);
    expect(await hasCheckpoint(path.join(out, 'fold-2'))).toBe(true);
    await expect(fsp.stat(path.join(out, 'oof.csv'))).rejects.toThrow();
    // The finished fold's figures, printed as it ended and readable while the run is stopped, are those the whole
    // run reports for it.
    const wholeSummary = JSON.parse(await fsp.readFile(path.join(whole(), 'crossval.json'), 'utf8'));
    const soFar = await crossvalSoFar(out);
    expect(soFar?.folds.map((fold) => fold.fold)).toEqual([1]);
    expect(soFar?.folds[0]).toEqual(wholeSummary.perFold[0]);
    // Compared with the whole run on the one fold both finished: the same bits, so no difference at all.
    const partial = await compareCrossvalRuns(whole(), out);
    expect(partial?.folds).toEqual([1]);
    expect(partial?.a.pooled.cells).toBe(wholeSummary.perFold[0].cells);
    expect(partial?.difference.balancedAccuracy.difference).toBe(0);
    const fold1 = wholeSummary.perFold[0];
    const pct = (value: number) => `${(100 * value).toFixed(1)}%`;
    expect(first.lines).toContain(
      `fold 1: ${fold1.cells} held-out cells of ${fold1.patients} patients: balanced accuracy ${pct(fold1.balancedAccuracy)}, ` +
        `sensitivity ${pct(fold1.sensitivity)}, specificity ${pct(fold1.specificity)}, AUC ${fold1.auc.toFixed(4)}, ECE ${fold1.ece.toFixed(4)}`,
    );

    const second = recorder();
    // The re-run leaves the epochs to the preset, whose value is not the run's (as after an upgrade changed a
    // preset): the run continues with the 2 epochs it started with.
    const resumed = await runCrossval(options(out, { epochs: PRESETS.tutorial.epochs }), {
      report: second,
      given: (key) => key !== 'epochs',
    });
    expect(resumed).toMatchObject({ stoppedEarly: false, foldsDone: 3 });
    expect(second.lines).toContain(`fold 1/3: done in an earlier run (${path.join(out, 'fold-1.csv')})`);
    expect(second.lines).toContain(`resuming after epoch 1 of 2 from ${path.join(out, 'fold-2')}`);
    // Fold 1 was not trained again; fold 2 trained one epoch, fold 3 two.
    expect(second.lines.filter((line) => /^Epoch \d\/2 - /.test(line)).map((line) => line.slice(0, 9))).toEqual([
      'Epoch 2/2',
      'Epoch 1/2',
      'Epoch 2/2',
    ]);
    expect(await fsp.readFile(path.join(out, 'oof.csv'), 'utf8')).toBe(
      await fsp.readFile(path.join(whole(), 'oof.csv'), 'utf8'),
    );
  });

  it('refuses, changing nothing, a re-run with other settings (unless --force), a foreign --out and --out inside --input', async () => {
    const before = await snapshotTree(whole());
    await expect(runCrossval(options(whole(), { epochs: 3 }), { report: silentReporter })).rejects.toThrow(
      /holds a cross-validation that was run with --epochs 2, not 3: pass --force/,
    );
    await expect(runCrossval(options(whole(), { folds: 4 }), { report: silentReporter })).rejects.toThrow(
      /was run with --folds 3, not 4/,
    );
    expect(await snapshotTree(whole())).toEqual(before);

    const foreign = path.join(dir, 'foreign');
    await fsp.mkdir(foreign);
    await fsp.writeFile(path.join(foreign, 'notes.txt'), 'mine');
    await expect(runCrossval(options(foreign), { report: silentReporter })).rejects.toThrow(
      /--out .*foreign holds files that are not a cross-validation written by `malaria crossval` \(it has no crossval-settings.json\)/,
    );
    await expect(runCrossval(options(foreign, { force: true }), { report: silentReporter })).rejects.toThrow(
      /not a cross-validation/,
    );
    expect(await fsp.readdir(foreign)).toEqual(['notes.txt']);

    const inputBefore = await snapshotTree(input());
    await expect(runCrossval(options(path.join(input(), 'crossval')), { report: silentReporter })).rejects.toThrow(
      /--out .* lies inside --input .*must not change/,
    );
    expect(await snapshotTree(input())).toEqual(inputBefore);
    expect(SAMPLE_DIR).not.toBe(input());
  });

  it('with --force, starts over in a cross-validation of ours, and only in one that holds nothing else', async () => {
    await fsp.writeFile(path.join(whole(), 'fold-2', 'notes.txt'), 'mine');
    await expect(runCrossval(options(whole(), { epochs: 1, force: true }), { report: silentReporter })).rejects.toThrow(
      /not a cross-validation written by `malaria crossval` \(fold-2: notes.txt is not/,
    );
    await fsp.rm(path.join(whole(), 'fold-2', 'notes.txt'));
    const report = recorder();
    const outcome = await runCrossval(options(whole(), { epochs: 1, force: true }), { report });
    expect(outcome).toMatchObject({ stoppedEarly: false, foldsDone: 3 });
    expect(report.lines.filter((line) => line.startsWith('Epoch '))).toHaveLength(3);
    const settings = JSON.parse(await fsp.readFile(path.join(whole(), 'crossval-settings.json'), 'utf8'));
    expect(settings.recipe.epochs).toBe(1);
    const { metadata } = await loadModel(path.join(whole(), 'fold-1')).then((loaded) => {
      loaded.model.dispose();
      return loaded;
    });
    expect(metadata.classNames).toHaveLength(2);

    // Two recipes on the same folds (2 epochs in `stopped`, now 1 here) compare fold by fold; other folds do not.
    const comparison = await compareCrossvalRuns(path.join(dir, 'stopped'), whole());
    expect(comparison?.folds).toEqual([1, 2, 3]);
    expect(comparison?.b.pooled.cells).toBe(comparison?.a.pooled.cells);
    const { difference } = comparison!;
    expect(difference.balancedAccuracy.difference).toBeCloseTo(
      comparison!.b.pooled.balancedAccuracy! - comparison!.a.pooled.balancedAccuracy!,
      12,
    );
    const other = path.join(dir, 'other-folds');
    await fsp.mkdir(other);
    const foldsMoved = {
      ...settings,
      cells: settings.cells.map((cell: { fold: number }) => ({ ...cell, fold: 1 + (cell.fold % 3) })),
    };
    await fsp.writeFile(path.join(other, 'crossval-settings.json'), JSON.stringify(foldsMoved));
    await expect(compareCrossvalRuns(whole(), other)).rejects.toThrow(
      /are cross-validations of other cells, folds or positive classes: compare runs made with the same --input/,
    );
  });
});
