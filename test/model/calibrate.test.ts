import { promises as fs } from 'node:fs';
import path from 'node:path';
import seedrandom from 'seedrandom';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { calibrateTemperature } from '../../src/model/calibrate.js';
import { batchProbabilities } from '../../src/model/inference.js';
import { loadModel, METADATA_FILE, saveModel } from '../../src/model/io.js';
import { applyTemperature } from '../../src/model/temperature.js';
import { withTempDir } from '../support/temp.js';
import { IMAGE_SIZE, spreadOutputs, tinyMetadata, tinyResNet } from '../support/models.js';
import { MemorySource } from '../support/sources.js';

const TRUE_TEMPERATURE = 3;
const IMAGES = 1000;

beforeAll(async () => {
  await selectBackend('cpu');
});

/**
 * A network overconfident by a known factor: its outputs spread to logit differences of standard deviation ~6,
 * and each image's label drawn from its probabilities softened by T = 3, so the truth is the network's output
 * at temperature 3.
 */
async function overconfidentValidation(model: tf.LayersModel): Promise<MemorySource> {
  const pixel = seedrandom('images');
  const x = Float32Array.from({ length: IMAGES * IMAGE_SIZE * IMAGE_SIZE * 3 }, () => pixel());
  spreadOutputs(model, x, IMAGES);
  const dense = model.layers.filter((layer) => layer.getClassName() === 'Dense').at(-1) as tf.layers.Layer;
  const scaled = dense.getWeights().map((w) => w.mul(3));
  dense.setWeights(scaled);
  tf.dispose(scaled);
  const truth = applyTemperature(await batchProbabilities(tf, model, x, IMAGES), 2, TRUE_TEMPERATURE);
  const draw = seedrandom('labels');
  const labels = Int32Array.from({ length: IMAGES }, (_, i) => (draw() < truth[2 * i] ? 0 : 1));
  return new MemorySource(x, labels, IMAGE_SIZE, 64);
}

describe('calibrateTemperature', () => {
  it('finds the known temperature on the validation split, lowers the ECE and saves T in metadata.json', async () => {
    await withTempDir(async (dir) => {
      const model = tinyResNet(11);
      try {
        const validation = await overconfidentValidation(model);
        await saveModel(dir, model, tinyMetadata({ threshold: 0.4 }));
        const fit = await calibrateTemperature(model, validation, dir);
        expect(fit.applied).toBe(true);
        expect(fit.images).toBe(IMAGES);
        // 1000 images pin T down to about +-15% (20 draws of the labels gave 2.71 to 3.45).
        expect(fit.temperature).toBeGreaterThan(2.4);
        expect(fit.temperature).toBeLessThan(3.6);
        expect(fit.eceAfter).toBeLessThan(fit.eceBefore / 2);
        const saved = JSON.parse(await fs.readFile(path.join(dir, METADATA_FILE), 'utf8'));
        // The rest of metadata.json is kept as it was.
        expect(saved).toEqual({ ...tinyMetadata({ threshold: 0.4 }), temperature: fit.temperature });
        const loaded = await loadModel(dir);
        loaded.model.dispose();
        expect(loaded.metadata.temperature).toBe(fit.temperature);
      } finally {
        model.dispose();
      }
    });
  });

  it('keeps T = 1 and writes nothing when the fit runs to the end of its range (a perfectly separated split)', async () => {
    await withTempDir(async (dir) => {
      const model = tinyResNet(12);
      try {
        const random = seedrandom('separable');
        const x = Float32Array.from({ length: 8 * IMAGE_SIZE * IMAGE_SIZE * 3 }, () => random());
        spreadOutputs(model, x, 8);
        // Labels are the network's own top class: every image right, so sharper is always better.
        const p = await batchProbabilities(tf, model, x, 8);
        const labels = Int32Array.from({ length: 8 }, (_, i) => (p[2 * i] >= p[2 * i + 1] ? 0 : 1));
        await saveModel(dir, model, tinyMetadata());
        const before = await fs.readFile(path.join(dir, METADATA_FILE), 'utf8');
        const fit = await calibrateTemperature(model, new MemorySource(x, labels, IMAGE_SIZE, 4), dir);
        expect(fit.applied).toBe(false);
        expect(fit.eceAfter).toBe(fit.eceBefore);
        expect(await fs.readFile(path.join(dir, METADATA_FILE), 'utf8')).toBe(before);
      } finally {
        model.dispose();
      }
    });
  });
});
