import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { saveModel } from '../../src/model/io.js';
import { trainModel } from '../../src/model/train.js';
import { runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { CLASS_NAMES, copySample } from '../support/sample.js';
import { IMAGE_SIZE, nodeInputs, tinyMetadata, tinyResNet, tinyRecipe } from '../support/models.js';
import { MemorySource } from '../support/sources.js';

const metadata = tinyMetadata();

let dir: string;
const modelDir = () => path.join(dir, 'model');
const data = () => path.join(dir, 'data');

beforeAll(async () => {
  // Trained on wasm, which trains a tiny model in seconds where the cpu backend takes a minute.
  await selectBackend('wasm');
  dir = await makeTempDir('malaria-export-cli-');
  const written = await copySample(path.join(data(), 'testing'), 3);
  // Trained on the very images it is later asked about, so its answers sit far from 0.5: an export that lost
  // or garbled weights moves them by far more than quantization does (an untrained model answers ~0.5 for all).
  const model = tinyResNet(6);
  const x = await nodeInputs(
    written.map((file) => path.join(data(), 'testing', file)),
    IMAGE_SIZE,
  );
  const labels = Int32Array.from(written, (file) =>
    CLASS_NAMES.indexOf(path.dirname(file) as (typeof CLASS_NAMES)[number]),
  );
  const images = new MemorySource(x, labels, IMAGE_SIZE, labels.length);
  await trainModel(model, images, images, tinyRecipe({ epochs: 30, lr: 0.1 }));
  // Batch norm's moving statistics (momentum 0.99) lag 30 steps behind: let them settle on the same images.
  const batch = tf.tensor4d(x, [labels.length, IMAGE_SIZE, IMAGE_SIZE, 3]);
  for (let pass = 0; pass < 100; pass++) tf.tidy(() => void model.apply(batch, { training: true }));
  batch.dispose();
  await selectBackend('cpu');
  await saveModel(modelDir(), model, metadata);
  model.dispose();
});

afterAll(async () => removeDir(dir));

const exportCli = (...args: string[]) =>
  runInProcess(['export', '--model-dir', modelDir(), '--backend', 'cpu', ...args]);

describe('malaria export', () => {
  it('writes the quantized folder and prints the file sizes and the saving', async () => {
    const out = path.join(dir, 'web');
    const { code, stdout, stderr } = await exportCli('--out', out, '--quantize', 'uint8');
    expect(code, stderr.join('\n')).toBe(0);
    expect(stdout[0]).toBe(`wrote ${out}:`);
    for (const name of ['model.json', 'weights.bin', 'metadata.json']) {
      const size = (await fs.stat(path.join(out, name))).size;
      expect(stdout).toContain(`  ${name.padEnd(14)} ${String(size).padStart(10)} bytes`);
    }
    const weights = (await fs.stat(path.join(out, 'weights.bin'))).size;
    const float32 = (await fs.stat(path.join(modelDir(), 'weights.bin'))).size;
    const share = ((100 * weights) / float32).toFixed(1);
    expect(stdout).toContain(
      `weights: ${(weights / 1e6).toFixed(2)} MB as uint8 against ${(float32 / 1e6).toFixed(2)} MB as float32 (${share}%)`,
    );
    expect(
      stdout.some((line) =>
        /^tensors: \d+ uint8, \d+ float16, 0 unchanged; largest weight change 0\.\d{3}% of its tensor's largest value$/.test(
          line,
        ),
      ),
    ).toBe(true);
    expect(
      stdout.some((line) => /^reloaded: largest probability change on 4 random images \d\.\d\de[-+]\d+$/.test(line)),
    ).toBe(true);
  });

  it('refuses a non-empty --out without --force (one line, exit 2), and bad flags', async () => {
    const out = path.join(dir, 'web'); // written by the test above
    const before = await fs.readFile(path.join(out, 'weights.bin'));
    const refused = await exportCli('--out', out, '--quantize', 'float16');
    expect(refused.code).toBe(2);
    expect(refused.stdout).toEqual([]);
    expect(refused.stderr.filter((l) => !l.startsWith('backend:'))).toEqual([
      `malaria: --out ${out} already holds a model; pass --force to replace it, or choose another folder`,
    ]);
    expect(await fs.readFile(path.join(out, 'weights.bin'))).toEqual(before);
    const forced = await exportCli('--out', out, '--quantize', 'float16', '--force');
    expect(forced.code).toBe(0);
    expect((await fs.stat(path.join(out, 'weights.bin'))).size * 2).toBe(
      (await fs.stat(path.join(modelDir(), 'weights.bin'))).size,
    );

    const badChoice = await exportCli('--out', path.join(dir, 'x'), '--quantize', 'int4');
    expect(badChoice.code).toBe(2);
    expect(badChoice.stderr.join('\n')).toMatch(/--quantize.*int4.*uint8, float16, none/s);
    expect((await exportCli('--quantize', 'uint8')).code).toBe(2); // no --out
    const noModel = await runInProcess([
      'export',
      '--model-dir',
      path.join(dir, 'nothing'),
      '--out',
      path.join(dir, 'y'),
      '--backend',
      'cpu',
    ]);
    expect(noModel.code).toBe(2);
    await expect(fs.access(path.join(dir, 'y'))).rejects.toThrow();
  });

  it('evaluate and predict accept the exported folder and agree with the original within quantization error', async () => {
    const out = path.join(dir, 'field');
    expect((await exportCli('--out', out, '--quantize', 'uint8')).code).toBe(0);
    const results = [];
    for (const model of [modelDir(), out]) {
      const evaluated = await runInProcess([
        'evaluate',
        '--data',
        data(),
        '--model-dir',
        model,
        '--backend',
        'cpu',
        '--json',
      ]);
      expect(evaluated.code, evaluated.stderr.join('\n')).toBe(0);
      const predicted = await runInProcess([
        'predict',
        '--model-dir',
        model,
        '--backend',
        'cpu',
        '--json',
        path.join(data(), 'testing'),
      ]);
      expect(predicted.code, predicted.stderr.join('\n')).toBe(0);
      results.push({
        evaluation: JSON.parse(evaluated.stdout[0]),
        predictions: JSON.parse(predicted.stdout[0]) as { file: string; label: string; probability: number }[],
      });
    }
    const [original, exported] = results;
    expect(exported.evaluation.n).toBe(6);
    expect(exported.predictions).toHaveLength(6);
    // The trained model knows these images: every answer right and far from 0.5.
    expect(original.evaluation.accuracy).toBe(1);
    expect(exported.evaluation.accuracy).toBe(1);
    const pParasitized = (e: { label: string; probability: number }) =>
      e.label === 'Parasitized' ? e.probability : 1 - e.probability;
    const differences = exported.predictions.map((p, i) => {
      const q = original.predictions[i];
      expect(p.file).toBe(q.file);
      expect(p.label).toBe(q.label);
      expect(Math.abs(pParasitized(q) - 0.5), q.file).toBeGreaterThan(0.25);
      return Math.abs(pParasitized(p) - pParasitized(q));
    });
    console.info(
      `uint8 export: largest change of P(Parasitized) on the 6 images ${Math.max(...differences).toExponential(2)}`,
    );
    // uint8 moves each weight by up to half a step of 1/255 of its tensor's range; through the net's 12 layers
    // that moves these probabilities by ~0.015 (measured). The bound leaves room for that and is still far below
    // their distance from 0.5, which an export that lost or garbled weights would not keep.
    differences.forEach((difference) => expect(difference).toBeLessThan(0.04));
  });
});
