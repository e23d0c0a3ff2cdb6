import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { calibrationOf } from '../../src/stats/calibration.js';
import { SHEET, tileOrigin } from '../../src/report/error-sheet.js';
import { expectOneErrorLine, runInProcess } from '../support/cli.js';
import { snapshotTree } from '../support/sample.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { brightnessMetadata, pParasitized, saveBrightnessModel } from '../support/models.js';

const metadata = brightnessMetadata;

// Uniform gray cells: brighter means more parasitized to this model.
const SPLITS = {
  // 8 positives: a sensitivity of 0.75 needs the 6 brightest, so the threshold is P(100).
  validation: { Parasitized: [200, 180, 160, 140, 120, 100, 80, 60], Uninfected: [50, 70, 90, 110, 130, 150] },
  // At P(100): positives 210, 150, 105 flagged (95, 40 missed); negatives 101, 170 flagged (30, 99 cleared).
  testing: { Parasitized: [210, 150, 105, 95, 40], Uninfected: [30, 99, 101, 170] },
};

let dir: string;
const data = () => path.join(dir, 'data');
const modelDir = () => path.join(dir, 'model');

async function writeGrayCells(): Promise<void> {
  for (const [split, classes] of Object.entries(SPLITS)) {
    for (const [className, grays] of Object.entries(classes)) {
      const folder = path.join(data(), split, className);
      await fs.mkdir(folder, { recursive: true });
      for (const gray of grays) {
        const png = await sharp({
          create: { width: 40, height: 40, channels: 3, background: { r: gray, g: gray, b: gray } },
        })
          .png()
          .toBuffer();
        await fs.writeFile(path.join(folder, `gray-${gray}.png`), png);
      }
    }
  }
}

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-evaluate-');
  await writeGrayCells();
  await saveBrightnessModel(modelDir());
});

afterAll(async () => removeDir(dir));

/** `malaria evaluate` of the gray cells by the brightness model on the cpu backend, then `flags` (a repeated flag wins). */
const evaluate = (...flags: string[]) =>
  runInProcess(['evaluate', '--data', data(), '--model-dir', modelDir(), '--backend', 'cpu', ...flags]);

// The parsed --json object: `any` because each test checks the fields it reads against hand-computed values.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
async function evaluateJson(...flags: string[]): Promise<{ json: Record<string, any>; stderr: string[] }> {
  const { code, stdout, stderr } = await evaluate('--json', ...flags);
  expect(code, stderr.join('\n')).toBe(0);
  expect(stdout).toHaveLength(1);
  return { json: JSON.parse(stdout[0]), stderr };
}

describe('malaria evaluate: thresholds', () => {
  it('--target-sensitivity chooses the threshold on validation and applies it to testing (hand-computed)', async () => {
    const { json, stderr } = await evaluateJson('--target-sensitivity', '0.75');
    expect(json.threshold).toBeCloseTo(pParasitized(100), 6);
    expect(json.threshold).toBeLessThan(pParasitized(101));
    expect(json.thresholdSource).toBe('validation');
    expect(json.thresholdSelection).toEqual({
      split: 'validation',
      targetSensitivity: 0.75,
      sensitivity: 0.75,
      positivesFlagged: 6,
      positives: 8,
    });
    expect(json.n).toBe(9);
    expect(json.confusion).toEqual([
      [3, 2],
      [2, 2],
    ]);
    expect(json.sensitivity).toBe(0.6);
    expect(json.specificity).toBe(0.5);
    expect(json.ci95.sensitivity[0]).toBeLessThan(0.6);
    expect(json.ci95.sensitivity[1]).toBeGreaterThan(0.6);
    // The model ranks by brightness, so the AUC is the share of (positive, negative) pairs with the positive brighter.
    expect(json.auc).toBeCloseTo(aucByPairs(SPLITS.testing.Parasitized, SPLITS.testing.Uninfected), 10);
    expect(
      stderr.some((line) =>
        line.startsWith(
          `threshold ${json.threshold} chosen on validation for sensitivity >= 75.00%: it flags 6 of 8 Parasitized images`,
        ),
      ),
    ).toBe(true);
  });

  it('--json holds exactly the keys the README lists', async () => {
    const readme = (await fs.readFile('README.md', 'utf8')).replace(/\s+/g, ' ');
    const listed = /`--json` prints one object: `(\{.*?\})` where/.exec(readme)?.[1];
    const selection = /with `--target-sensitivity` it also holds `("thresholdSelection": \{.*?\})`/.exec(readme)?.[1];
    expect(listed, 'the README lists the keys').toBeDefined();
    expect(selection, 'the README lists thresholdSelection').toBeDefined();
    const distinct = (keys: string[]) => [...new Set(keys)].sort();
    const documented = (text: string) => distinct([...text.matchAll(/"(\w+)"/g)].map((m) => m[1]));
    // Every key of the object, nested ones too (but not the class names under "classes", which vary).
    const keysOf = (value: unknown, under = ''): string[] =>
      value && typeof value === 'object' && !Array.isArray(value)
        ? Object.entries(value).flatMap(([key, inner]) =>
            under === 'classes' ? keysOf(inner) : [key, ...keysOf(inner, key)],
          )
        : [];
    const plain = (await evaluateJson()).json;
    expect(distinct(keysOf(plain))).toEqual(documented(listed as string));
    const chosen = (await evaluateJson('--target-sensitivity', '0.75')).json;
    expect(distinct(keysOf(chosen))).toEqual(documented(`${listed} ${selection}`));
  });

  it('--threshold is applied as given; without flags the threshold is 0.5', async () => {
    // P >= 0.9 means gray >= 183.5: only the 210 positive, no negative.
    const strict = (await evaluateJson('--threshold', '0.9')).json;
    expect(strict).toMatchObject({ threshold: 0.9, thresholdSource: 'flag', sensitivity: 0.2, specificity: 1 });
    expect(strict).not.toHaveProperty('thresholdSelection');
    // P >= 0.5 means gray >= 127.5: positives 210, 150; negative 170.
    const plain = (await evaluateJson()).json;
    expect(plain).toMatchObject({ threshold: 0.5, thresholdSource: 'default', sensitivity: 0.4, specificity: 0.75 });
  });

  it('--save-threshold stores it in metadata.json, which then is the default, and --roc draws the curve', async () => {
    const saved = path.join(dir, 'saved-model');
    await fs.cp(modelDir(), saved, { recursive: true });
    const chosen = (await evaluateJson('--model-dir', saved, '--target-sensitivity', '1', '--save-threshold')).json;
    // Sensitivity 1 on validation needs every positive: the darkest, gray 60.
    expect(chosen.threshold).toBeCloseTo(pParasitized(60), 6);
    const written = JSON.parse(await fs.readFile(path.join(saved, 'metadata.json'), 'utf8'));
    expect(written).toEqual({ ...metadata, threshold: chosen.threshold });

    const roc = path.join(dir, 'plots', 'roc.png');
    const report = await evaluate('--model-dir', saved, '--roc', roc);
    expect(report.code, report.stderr.join('\n')).toBe(0);
    expect(report.stdout.join('\n')).toContain(
      `threshold P(Parasitized) >= ${chosen.threshold} (saved with the model)`,
    );
    // On testing, P(60) flags the positives but the 40 one, and the negatives 99, 101 and 170.
    expect(report.stdout.join('\n')).toMatch(/sensitivity: 80\.00%.*\(4 of 5 parasitized cells found\)/);
    expect(report.stdout.join('\n')).toMatch(/specificity: 25\.00%.*\(1 of 4 uninfected cells cleared\)/);
    expect(report.stdout).toContain(`ROC curve written to ${roc}`);
    const png = await sharp(roc).metadata();
    expect([png.format, png.width, png.height]).toEqual(['png', 800, 600]);
  });

  it('refuses contradictory or out-of-range threshold flags with one line and exit code 2', async () => {
    for (const flags of [
      ['--threshold', '0.5', '--target-sensitivity', '0.9'],
      ['--threshold', '1.5'],
      ['--threshold', 'abc'],
      ['--target-sensitivity', '0'],
      ['--target-sensitivity', '1.2'],
      ['--save-threshold'],
    ]) {
      const { code, stdout, stderr } = await evaluate(...flags);
      expect(code, flags.join(' ')).toBe(2);
      expect(stdout, flags.join(' ')).toEqual([]);
      expect(
        stderr.filter((line) => !line.startsWith('backend:')),
        flags.join(' '),
      ).toHaveLength(1);
    }
  });

  it('says so when the validation split has no parasitized cells (exit code 1)', async () => {
    const lopsided = path.join(dir, 'lopsided');
    await fs.mkdir(path.join(lopsided, 'validation', 'Uninfected'), { recursive: true });
    await fs.cp(path.join(data(), 'validation', 'Uninfected'), path.join(lopsided, 'validation', 'Uninfected'), {
      recursive: true,
    });
    await fs.cp(path.join(data(), 'testing'), path.join(lopsided, 'testing'), { recursive: true });
    const { code, stderr } = await runInProcess([
      'evaluate',
      '--data',
      lopsided,
      '--model-dir',
      modelDir(),
      '--backend',
      'cpu',
      '--target-sensitivity',
      '0.9',
    ]);
    expect(code).toBe(1);
    expect(stderr.filter((line) => line.startsWith('malaria:'))).toEqual([
      'malaria: the validation split holds no Parasitized images, so no threshold can be chosen on it; pass --threshold instead',
    ]);
  });
});

describe('malaria evaluate: balanced accuracy and bootstrap intervals', () => {
  it('resamples cells when the file names carry no patient id', async () => {
    // At 0.5: sensitivity 2/5, specificity 3/4.
    const { json } = await evaluateJson();
    expect(json.balancedAccuracy).toBeCloseTo((0.4 + 0.75) / 2, 6);
    expect(json.ci95Method).toBe('cell bootstrap (9 cells, 2000 replicates)');
    expect(json.ci95.balancedAccuracy[0]).toBeLessThan(json.balancedAccuracy);
    expect(json.ci95.balancedAccuracy[1]).toBeGreaterThan(json.balancedAccuracy);
    expect(json.ci95.auc[0]).toBeLessThan(json.auc);
    expect(json.ci95.auc[1]).toBeGreaterThanOrEqual(json.auc);
  });

  it('resamples patients, read from NIH file names', async () => {
    // The testing cells of three patients, each with both classes.
    const patientOf: Record<number, string> = { 210: 'C1P1', 150: 'C1P1', 30: 'C1P1' };
    Object.assign(patientOf, { 105: 'C2P2', 99: 'C2P2', 101: 'C2P2', 95: 'C3P3', 40: 'C3P3', 170: 'C3P3' });
    const named = path.join(dir, 'named');
    for (const [className, grays] of Object.entries(SPLITS.testing)) {
      await fs.mkdir(path.join(named, 'testing', className), { recursive: true });
      for (const gray of grays) {
        await fs.copyFile(
          path.join(data(), 'testing', className, `gray-${gray}.png`),
          path.join(named, 'testing', className, `${patientOf[gray]}ThinF_IMG_20150101_000000_cell_${gray}.png`),
        );
      }
    }
    const { json } = await evaluateJson('--data', named);
    expect(json.n).toBe(9);
    expect(json.ci95Method).toBe('patient bootstrap (3 patients, 2000 replicates)');
    expect(json.ci95.balancedAccuracy[0]).toBeLessThanOrEqual(json.balancedAccuracy);
    expect(json.ci95.balancedAccuracy[1]).toBeGreaterThanOrEqual(json.balancedAccuracy);
    const report = await runInProcess(['evaluate', '--data', named, '--model-dir', modelDir(), '--backend', 'cpu']);
    expect(report.code, report.stderr.join('\n')).toBe(0);
    const text = report.stdout.join('\n');
    expect(text).toMatch(/\nbalanced accuracy: 57\.50% \(95% CI \d+\.\d-\d+\.\d%, bootstrap over 3 patients\)\n/);
    expect(text).toMatch(/\nROC AUC: \d\.\d{4} \(95% CI \d\.\d{4}-\d\.\d{4}, bootstrap over 3 patients\) {3}MCC: /);
  });
});

/** The testing split's probabilities as the model gives them at temperature T (labels: 0 Parasitized, 1 Uninfected). */
function testingAt(temperature: number): { probabilities: Float32Array; labels: Int32Array } {
  const cells = [
    ...SPLITS.testing.Parasitized.map((gray) => [gray, 0]),
    ...SPLITS.testing.Uninfected.map((gray) => [gray, 1]),
  ];
  // Files are read in name order within each class; the ECE does not depend on the order anyway.
  const p = cells.map(([gray]) => 1 / (1 + Math.exp((-10 * (gray / 255 - 0.5)) / temperature)));
  return {
    probabilities: Float32Array.from(p.flatMap((q) => [q, 1 - q])),
    labels: Int32Array.from(cells.map(([, label]) => label)),
  };
}

describe('malaria evaluate: calibration', () => {
  it('reports the ECE of the probabilities; a temperature in metadata.json is applied and reported', async () => {
    const plain = (await evaluateJson()).json;
    const expected = testingAt(1);
    expect(plain.ece).toBeCloseTo(calibrationOf(expected.probabilities, expected.labels, 2).ece, 6);
    expect(plain).not.toHaveProperty('temperature');

    const warm = path.join(dir, 'warm-model');
    await fs.cp(modelDir(), warm, { recursive: true });
    await fs.writeFile(path.join(warm, 'metadata.json'), JSON.stringify({ ...metadata, temperature: 2 }));
    const scaled = (await evaluateJson('--model-dir', warm)).json;
    const softer = testingAt(2);
    expect(scaled.temperature).toBe(2);
    expect(scaled.ece).toBeCloseTo(calibrationOf(softer.probabilities, softer.labels, 2).ece, 6);
    expect(scaled.ece).not.toBeCloseTo(plain.ece, 3);
    // A temperature never moves P = 0.5, so the decisions at 0.5 and the ranking (AUC) stay.
    expect(scaled.confusion).toEqual(plain.confusion);
    expect(scaled.auc).toBe(plain.auc);
  });

  it('--calibration draws the reliability diagram; --tta is reported (this model ignores orientation, so nothing moves)', async () => {
    const png = path.join(dir, 'plots', 'reliability.png');
    const report = await evaluate('--calibration', png, '--tta');
    expect(report.code, report.stderr.join('\n')).toBe(0);
    expect(report.stdout).toContain(`reliability diagram written to ${png}`);
    expect(report.stdout.join('\n')).toMatch(
      /calibration: ECE 0\.\d{4} \(15 bins on the top class's probability\), no temperature \(T = 1\), test-time augmentation/,
    );
    const image = await sharp(png).metadata();
    expect([image.format, image.width, image.height]).toEqual(['png', 800, 600]);
    const [tta, plain] = [(await evaluateJson('--tta')).json, (await evaluateJson()).json];
    expect(tta.tta).toBe(true);
    expect(tta.ece).toBeCloseTo(plain.ece, 6);
  });
});

describe('malaria evaluate --errors', () => {
  it('draws the misclassified testing cells, the most confident mistakes first', async () => {
    const sheet = path.join(dir, 'plots', 'errors.png');
    const report = await evaluate('--errors', sheet);
    expect(report.code, report.stderr.join('\n')).toBe(0);
    expect(report.stdout).toContain(`error sheet written to ${sheet} (4 of 4 misclassified cells)`);
    // At 0.5 the positives 105, 95 and 40 are missed and the negative 170 is flagged; each tile is ordered by the
    // probability the model gave the cell's true class.
    const pTruth = (gray: number) =>
      SPLITS.testing.Parasitized.includes(gray) ? pParasitized(gray) : 1 - pParasitized(gray);
    const expected = [105, 95, 40, 170].sort((a, b) => pTruth(a) - pTruth(b));
    const drawn = [];
    for (let i = 0; i < expected.length; i++) {
      const { left, top } = tileOrigin(i);
      const centre = { left: left + SHEET.cell / 2, top: top + SHEET.cell / 2, width: 1, height: 1 };
      drawn.push((await sharp(sheet).extract(centre).raw().toBuffer())[0]);
    }
    expect(drawn).toEqual(expected);
  });
});

describe('malaria evaluate: output files', () => {
  /** `malaria evaluate` with `flags` must exit 2 with one line matching `pattern`, print no report, change nothing. */
  async function expectRefused(flags: string[], pattern: RegExp): Promise<void> {
    const before = await snapshotTree(dir);
    const result = await evaluate(...flags);
    expect(result.code, [...result.stdout, ...result.stderr].join('\n')).toBe(2);
    expectOneErrorLine(result, pattern, flags.join(' '));
    // Refused before the model ran: no report at all.
    expect(result.stdout, flags.join(' ')).toEqual([]);
    expect(await snapshotTree(dir)).toEqual(before);
  }

  it('--roc onto a file this tool did not write: refused, the file unchanged byte for byte; --force replaces it', async () => {
    const notes = path.join(dir, 'notes', 'README.md');
    await fs.mkdir(path.dirname(notes), { recursive: true });
    await fs.writeFile(notes, '# Lab notes\n\nSlides of March: stain too dark.\n');
    await expectRefused(
      ['--roc', notes],
      /^malaria: --roc .*README\.md is not a file this tool wrote \(it is not a PNG\); nothing was changed: choose another file, or pass --force to replace it$/,
    );
    const forced = await evaluate('--roc', notes, '--force');
    expect(forced.code, forced.stderr.join('\n')).toBe(0);
    const replaced = await sharp(notes).metadata();
    expect(replaced.format).toBe('png');
    expect(replaced.comments).toEqual([{ keyword: 'Software', text: 'malaria' }]);
  });

  it("replaces its own earlier PNG without --force, another program's PNG only with --force", async () => {
    const diagram = path.join(dir, 'plots', 'again.png');
    const sheet = path.join(dir, 'plots', 'again-errors.png');
    for (const run of [1, 2]) {
      const result = await evaluate('--calibration', diagram, '--errors', sheet);
      expect(result.code, `run ${run}: ${result.stderr.join('\n')}`).toBe(0);
      for (const file of [diagram, sheet]) {
        expect((await sharp(file).metadata()).comments, file).toEqual([{ keyword: 'Software', text: 'malaria' }]);
      }
    }
    const theirs = path.join(dir, 'plots', 'theirs.png');
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } })
      .png()
      .toFile(theirs);
    await expectRefused(
      ['--calibration', theirs],
      /^malaria: --calibration .*theirs\.png is not a file this tool wrote \(it is a PNG another program wrote\); nothing was changed/,
    );
  });

  it('refuses an output inside a split or the model folder, a folder, and two outputs naming one file', async () => {
    await expectRefused(
      ['--errors', path.join(data(), 'testing', 'Parasitized', 'errors.png')],
      /^malaria: --errors .*errors\.png lies inside the testing split of --data .*data, which this command reads and must not change; choose a separate folder$/,
    );
    await expectRefused(
      ['--split', 'validation', '--roc', path.join(data(), 'validation', 'roc.png')],
      /^malaria: --roc .*roc\.png lies inside the validation split of --data/,
    );
    await expectRefused(
      ['--calibration', path.join(modelDir(), 'calibration.png')],
      /^malaria: --calibration .*calibration\.png lies inside --model-dir .*model, which this command reads/,
    );
    const folder = path.join(dir, 'a-folder');
    await fs.mkdir(folder, { recursive: true });
    await expectRefused(['--roc', folder, '--force'], /^malaria: --roc .*a-folder is a folder: name a file to write$/);
    const same = path.join(dir, 'plots', 'same.png');
    await expectRefused(
      ['--roc', same, '--calibration', path.join(dir, 'plots', '..', 'plots', 'same.png')],
      /^malaria: --roc .*same\.png and --calibration .*same\.png name the same file; give each its own$/,
    );
  });
});

/** ROC AUC as the fraction of (positive, negative) pairs ordered correctly, ties 1/2. */
function aucByPairs(positives: number[], negatives: number[]): number {
  let wins = 0;
  for (const p of positives) for (const n of negatives) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}
