import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { predictSplit } from '../../src/workflows/evaluate.js';
import { loadModel } from '../../src/model/io.js';
import { silentReporter } from '../../src/report/reporter.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { brightnessMetadata, saveBrightnessModel } from '../support/models.js';

let dir: string;

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-evaluate-split-');
  // One cell whose mean brightness depends on the resize: every third column white, 96 -> 32.
  const folder = path.join(dir, 'data', 'testing', 'Parasitized');
  await fs.mkdir(folder, { recursive: true });
  const pixels = Buffer.alloc(96 * 96 * 3);
  for (let i = 0; i < 96 * 96; i++) if (i % 3 === 1) pixels.fill(255, i * 3, i * 3 + 3);
  await sharp(pixels, { raw: { width: 96, height: 96, channels: 3 } })
    .png()
    .toFile(path.join(folder, 'stripes.png'));
  await saveBrightnessModel(path.join(dir, 'model'));
});

afterAll(async () => removeDir(dir));

describe('predictSplit', () => {
  it("resizes the split's images and treats their colours the way the model's metadata says", async () => {
    const { model } = await loadModel(path.join(dir, 'model'));
    const pOf = async (
      resize: 'nearest' | 'area',
      stain: 'keep' | 'balance' = 'keep',
      stainReference?: [number, number, number],
    ) => {
      const metadata = { ...brightnessMetadata, resize, stain, stainReference };
      const options = { data: path.join(dir, 'data'), batchSize: 4 };
      const predictions = await predictSplit(model, metadata, options, 'testing', silentReporter);
      return predictions.probabilities[0];
    };
    // P(Parasitized) = sigmoid(10 (m - 0.5)), m the mean pixel: 1 after nearest sampling, 1/3 after area.
    expect(await pOf('nearest')).toBeCloseTo(1 / (1 + Math.exp(-5)), 4);
    expect(await pOf('area')).toBeCloseTo(1 / (1 + Math.exp(10 / 6)), 4);
    // Balanced, the white cell takes the reference colour: m = mean(186, 155, 165) / 255.
    expect(await pOf('nearest', 'balance')).toBeCloseTo(1 / (1 + Math.exp(-10 * (506 / 765 - 0.5))), 2);
    // The reference saved with the model, not the constant: a dark grey one gives m = 51 / 255 = 0.2.
    expect(await pOf('nearest', 'balance', [51, 51, 51])).toBeCloseTo(1 / (1 + Math.exp(3)), 2);
    model.dispose();
  });
});
