import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { saveModel } from '../../src/model/io.js';
import { applyTemperature } from '../../src/model/temperature.js';
import { runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { CLASS_NAMES, SAMPLE_DIR, sampleNames } from '../support/sample.js';
import { thumbsDb } from '../support/images.js';
import { tinyMetadata, tinyResNet } from '../support/models.js';

const metadata = tinyMetadata();

let dir: string;
const modelDir = () => path.join(dir, 'model');
const folder = () => path.join(dir, 'cells');
let goodFile: string;

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-predict-');
  const model = tinyResNet(3);
  await saveModel(modelDir(), model, metadata);
  model.dispose();
  // cells/: three real cells, a Thumbs.db, a truncated PNG and a text file named .png.
  await fs.mkdir(folder());
  const names = [
    ...(await sampleNames('Parasitized', 2)).map((n) => ['Parasitized', n]),
    ...(await sampleNames('Uninfected', 1)).map((n) => ['Uninfected', n]),
  ];
  for (const [className, name] of names)
    await fs.copyFile(path.join(SAMPLE_DIR, className, name), path.join(folder(), `${className}-${name}`));
  await fs.writeFile(path.join(folder(), 'Thumbs.db'), thumbsDb());
  const png = await fs.readFile(path.join(SAMPLE_DIR, names[0][0], names[0][1]));
  await fs.writeFile(path.join(folder(), 'truncated.png'), png.subarray(0, 200));
  await fs.writeFile(path.join(folder(), 'readme.png'), 'this is text\n');
  goodFile = path.join(SAMPLE_DIR, 'Uninfected', (await sampleNames('Uninfected', 2))[1]);
});

afterAll(async () => removeDir(dir));

const predict = (...args: string[]) =>
  runInProcess(['predict', '--model-dir', modelDir(), '--backend', 'cpu', ...args]);

describe('malaria predict', () => {
  it('--json: one array with {file, label, probability} or {file, error}; the good files still run; exit code 1', async () => {
    const missing = path.join(dir, 'missing.png');
    const { code, stdout, stderr } = await predict('--json', '--batch-size', '2', goodFile, folder(), missing);
    expect(code).toBe(1);
    expect(stdout).toHaveLength(1);
    const entries = JSON.parse(stdout[0]) as Record<string, unknown>[];
    expect(entries.map((e) => e.file)).toEqual([
      goodFile,
      ...(await fs.readdir(folder()))
        .filter((n) => n !== 'Thumbs.db')
        .sort()
        .map((n) => path.join(folder(), n)),
      missing,
    ]);
    const failed = entries.filter((e) => 'error' in e);
    expect(failed.map((e) => path.basename(e.file as string))).toEqual(['readme.png', 'truncated.png', 'missing.png']);
    for (const entry of failed) {
      expect(Object.keys(entry)).toEqual(['file', 'error']);
      expect(typeof entry.error).toBe('string');
    }
    expect(failed[1].error).toMatch(/^cannot decode/);
    expect(failed[2].error).toBe('not found');
    const good = entries.filter((e) => !('error' in e));
    expect(good).toHaveLength(4);
    for (const entry of good) {
      expect(Object.keys(entry)).toEqual(['file', 'label', 'probability']);
      expect(CLASS_NAMES).toContain(entry.label);
      // At threshold 0.5 on two classes, the label given is the more probable one.
      expect(entry.probability).toBeGreaterThanOrEqual(0.5);
      expect(entry.probability).toBeLessThanOrEqual(1);
    }
    expect(stderr).toContain('Parasitized when P(Parasitized) >= 0.5 (the default)');
    expect(
      stderr.some((line) =>
        /^4 images classified \(\d+ Parasitized, \d+ Uninfected\); 3 failed; 1 non-image file skipped$/.test(line),
      ),
    ).toBe(true);
    expect(stderr).toContain('malaria: 3 of 7 files could not be classified');
  });

  it('prints a table and exits 0 when every file is classified; --threshold decides the label', async () => {
    const { code, stdout } = await predict('--threshold', '0', goodFile);
    expect(code).toBe(0);
    const lines = stdout.join('\n').split('\n');
    expect(lines[0]).toMatch(/^file\s+label\s+probability$/);
    expect(lines).toHaveLength(2);
    // Threshold 0 flags everything: the probability shown is P(Parasitized), whatever it is.
    expect(lines[1]).toMatch(
      new RegExp(`^${goodFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+Parasitized\\s+[01]\\.\\d{4}$`),
    );
  });

  it('uses the threshold saved with the model by default', async () => {
    const saved = path.join(dir, 'strict-model');
    await fs.cp(modelDir(), saved, { recursive: true });
    await fs.writeFile(path.join(saved, 'metadata.json'), JSON.stringify({ ...metadata, threshold: 1 }));
    const { code, stdout, stderr } = await runInProcess([
      'predict',
      '--model-dir',
      saved,
      '--backend',
      'cpu',
      '--json',
      folder(),
    ]);
    expect(code).toBe(1); // the two broken files
    expect(stderr).toContain('Parasitized when P(Parasitized) >= 1 (saved with the model)');
    const labels = (JSON.parse(stdout[0]) as { label?: string }[]).filter((e) => e.label).map((e) => e.label);
    expect(labels).toEqual(['Uninfected', 'Uninfected', 'Uninfected']);
  });

  it('applies the temperature saved with the model to every probability', async () => {
    const warm = path.join(dir, 'warm-model');
    await fs.cp(modelDir(), warm, { recursive: true });
    await fs.writeFile(path.join(warm, 'metadata.json'), JSON.stringify({ ...metadata, temperature: 0.02 }));
    // Threshold 0: the probability printed is P(Parasitized) for every file.
    const pParasitized = async (model: string) => {
      const { stdout, stderr } = await runInProcess([
        'predict',
        '--model-dir',
        model,
        '--backend',
        'cpu',
        '--threshold',
        '0',
        '--json',
        goodFile,
      ]);
      notes.push(...stderr.filter((line) => line.startsWith('probabilities:')));
      return (JSON.parse(stdout[0]) as { probability: number }[])[0].probability;
    };
    const notes: string[] = [];
    const plain = await pParasitized(modelDir());
    const expected = applyTemperature(Float32Array.from([plain, 1 - plain]), 2, 0.02)[0];
    // Rounded to 6 decimals in the JSON, and amplified 50 times by T = 0.02.
    expect(await pParasitized(warm)).toBeCloseTo(expected, 3);
    expect(Math.abs(expected - plain)).toBeGreaterThan(0.01);
    expect(notes).toEqual(['probabilities: temperature 0.02 saved with the model']);
  });

  it('--tta: an image and its copy turned by 90 degrees get the same probability', async () => {
    // At the model's own size, so resizing does not stand between the two.
    const upright = path.join(dir, 'upright.png');
    const turned = path.join(dir, 'turned.png');
    await sharp(goodFile).resize(32, 32, { fit: 'fill' }).png().toFile(upright);
    await sharp(upright).rotate(90).png().toFile(turned);
    const probabilities = async (...flags: string[]) => {
      const { code, stdout } = await predict('--threshold', '0', '--json', ...flags, upright, turned);
      expect(code).toBe(0);
      return (JSON.parse(stdout[0]) as { probability: number }[]).map((e) => e.probability);
    };
    const [plainUpright, plainTurned] = await probabilities();
    const [ttaUpright, ttaTurned] = await probabilities('--tta');
    // The untrained model is nearly indifferent, but not to orientation: 3e-4 apart, 60x the tolerance below.
    expect(Math.abs(plainUpright - plainTurned)).toBeGreaterThan(1e-4);
    expect(ttaUpright).toBeCloseTo(ttaTurned, 5);
  });

  it('--summary under --json: the slide summary goes to stderr, stdout stays one JSON array', async () => {
    // (test/report/parasitemia.test.ts checks the summary's figures after the table.)
    const { stdout, stderr } = await predict('--summary', '--json', '--threshold', '0.5', folder());
    expect(stdout).toHaveLength(1);
    const entries = JSON.parse(stdout[0]) as { label?: string }[];
    // The 3 cells that decode count, the 2 broken files do not; the labels are the array's.
    const parasitized = entries.filter((e) => e.label === 'Parasitized').length;
    const lines = stderr.flatMap((line) => line.split('\n'));
    const start = lines.indexOf(`slide summary: 3 cells, ${parasitized} Parasitized`);
    expect(start, lines.join('\n')).toBeGreaterThanOrEqual(0);
    expect(lines[start + 1]).toMatch(/^parasitemia: [\d.]+% \(95% CI /);
    expect(lines[start + 2]).toBe('threshold: P(Parasitized) >= 0.5');
  });

  it('a folder without images, or a bad flag, is one line and exit code 2', async () => {
    const empty = path.join(dir, 'only-thumbs');
    await fs.mkdir(empty);
    await fs.writeFile(path.join(empty, 'Thumbs.db'), thumbsDb());
    const none = await predict(empty);
    expect(none.code).toBe(2);
    expect(none.stderr.filter((l) => l.startsWith('malaria:'))).toEqual([
      `malaria: no image files found in ${empty} (1 other file skipped)`,
    ]);
    for (const flags of [
      ['--threshold', '2'],
      ['--batch-size', '0'],
    ]) {
      const bad = await predict(...flags, goodFile);
      expect(bad.code, flags.join(' ')).toBe(2);
      expect(bad.stdout).toEqual([]);
      expect(bad.stderr.join('\n')).toContain(flags[0]);
    }
    const noArgs = await runInProcess(['predict']);
    expect(noArgs.code).toBe(2);
  });
});
