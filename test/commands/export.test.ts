import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/tf.js';
import { saveModel } from '../../src/model/io.js';
import { tinyMetadata, tinyResNet } from '../model/helpers.js';
import { copySample, makeTempDir, removeDir } from '../data/fixtures.js';
import { runMain } from './run-main.js';

const metadata = tinyMetadata();

let dir: string;
const modelDir = () => path.join(dir, 'model');
const data = () => path.join(dir, 'data');

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-export-cli-');
  const model = tinyResNet(6);
  await saveModel(modelDir(), model, metadata);
  model.dispose();
  await copySample(path.join(data(), 'testing'), 3);
});

afterAll(async () => removeDir(dir));

const exportCli = (...args: string[]) => runMain(['export', '--model-dir', modelDir(), '--backend', 'cpu', ...args]);

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
    expect(stdout).toContain(`weights: ${(weights / 1e6).toFixed(2)} MB as uint8 against ${(float32 / 1e6).toFixed(2)} MB as float32 (${share}%)`);
    expect(stdout.some((line) => /^tensors: \d+ uint8, \d+ float16, 0 unchanged; largest weight change 0\.\d{3}% of its tensor's largest value$/.test(line))).toBe(true);
    expect(stdout.some((line) => /^reloaded: largest probability change on 4 random images \d\.\d\de[-+]\d+$/.test(line))).toBe(true);
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
    expect((await fs.stat(path.join(out, 'weights.bin'))).size * 2).toBe((await fs.stat(path.join(modelDir(), 'weights.bin'))).size);

    const badChoice = await exportCli('--out', path.join(dir, 'x'), '--quantize', 'int4');
    expect(badChoice.code).toBe(2);
    expect(badChoice.stderr.join('\n')).toMatch(/--quantize.*int4.*uint8, float16, none/s);
    expect((await exportCli('--quantize', 'uint8')).code).toBe(2); // no --out
    const noModel = await runMain(['export', '--model-dir', path.join(dir, 'nothing'), '--out', path.join(dir, 'y'), '--backend', 'cpu']);
    expect(noModel.code).toBe(2);
    await expect(fs.access(path.join(dir, 'y'))).rejects.toThrow();
  });

  it('evaluate and predict accept the exported folder and agree with the original within quantization error', async () => {
    const out = path.join(dir, 'field');
    expect((await exportCli('--out', out, '--quantize', 'uint8')).code).toBe(0);
    const results = [];
    for (const model of [modelDir(), out]) {
      const evaluated = await runMain(['evaluate', '--data', data(), '--model-dir', model, '--backend', 'cpu', '--json']);
      expect(evaluated.code, evaluated.stderr.join('\n')).toBe(0);
      const predicted = await runMain(['predict', '--model-dir', model, '--backend', 'cpu', '--json', path.join(data(), 'testing')]);
      expect(predicted.code, predicted.stderr.join('\n')).toBe(0);
      results.push({ evaluation: JSON.parse(evaluated.stdout[0]), predictions: JSON.parse(predicted.stdout[0]) as { file: string; label: string; probability: number }[] });
    }
    const [original, exported] = results;
    expect(exported.evaluation.n).toBe(6);
    expect(exported.predictions).toHaveLength(6);
    exported.predictions.forEach((p, i) => {
      const q = original.predictions[i];
      expect(p.file).toBe(q.file);
      // The probability of Parasitized moves by the quantization error only.
      const pParasitized = (e: { label: string; probability: number }) => (e.label === 'Parasitized' ? e.probability : 1 - e.probability);
      expect(Math.abs(pParasitized(p) - pParasitized(q))).toBeLessThan(0.02);
    });
  });
});
