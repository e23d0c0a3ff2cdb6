import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { decodeCell } from '../../src/input/decode.js';
import { classifyFiles, gatherImageFiles, isFailed, type ClassifiedFile } from '../../src/model/classify.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { CLASS_NAMES, SAMPLE_DIR, sampleNames } from '../support/sample.js';
import { thumbsDb } from '../support/images.js';
import sharp from 'sharp';
import { loadModel } from '../../src/model/io.js';
import { IMAGE_SIZE, brightnessMetadata, saveBrightnessModel, tinyMetadata, tinyResNet } from '../support/models.js';
import { preprocessingOf } from '../../src/input/preprocessing.js';

const metadata = tinyMetadata();

let dir: string;
let model: tf.LayersModel;
/** Three real cells: two parasitized, one uninfected. */
let cells: string[];

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-classify-');
  model = tinyResNet(8);
  const [p1, p2] = await sampleNames('Parasitized', 2);
  const [u1] = await sampleNames('Uninfected', 1);
  cells = [
    path.join(SAMPLE_DIR, 'Parasitized', p1),
    path.join(SAMPLE_DIR, 'Parasitized', p2),
    path.join(SAMPLE_DIR, 'Uninfected', u1),
  ];
  // folder/: two good cells in a subfolder, a Thumbs.db, a truncated PNG and a text file named .png.
  await fs.mkdir(path.join(dir, 'folder', 'sub'), { recursive: true });
  await fs.copyFile(cells[0], path.join(dir, 'folder', 'sub', 'a.png'));
  await fs.copyFile(cells[2], path.join(dir, 'folder', 'b.png'));
  await fs.writeFile(path.join(dir, 'folder', 'Thumbs.db'), thumbsDb());
  const png = await fs.readFile(cells[1]);
  await fs.writeFile(path.join(dir, 'folder', 'truncated.png'), png.subarray(0, Math.floor(png.length / 2)));
  await fs.writeFile(path.join(dir, 'folder', 'notes.png'), 'not a picture\n');
});

afterAll(async () => {
  model?.dispose();
  await removeDir(dir);
});

/** The model's probabilities for one file, preprocessed here by hand: decode, nearest resize, x/255. */
async function expectedProbabilities(file: string): Promise<number[]> {
  const pixels = await decodeCell(file, preprocessingOf({ imageSize: IMAGE_SIZE }));
  const x = Float32Array.from(pixels, (v) => v / 255);
  return tf.tidy(() =>
    Array.from((model.predict(tf.tensor4d(x, [1, IMAGE_SIZE, IMAGE_SIZE, 3])) as tf.Tensor).dataSync()),
  );
}

describe('gatherImageFiles', () => {
  it('walks folders (images by content, sorted), keeps named files, marks broken and missing ones, counts the rest', async () => {
    const folder = path.join(dir, 'folder');
    const missing = path.join(dir, 'missing.png');
    const { items, skipped } = await gatherImageFiles([cells[1], folder, missing, path.join(folder, 'b.png')]);
    expect(items).toEqual([
      { file: cells[1], path: cells[1] },
      { file: path.join(folder, 'b.png'), path: path.join(folder, 'b.png') },
      { file: path.join(folder, 'notes.png'), error: 'content is not a known image format' },
      { file: path.join(folder, 'sub', 'a.png'), path: path.join(folder, 'sub', 'a.png') },
      // The truncated file starts like a PNG: found here, refused by the decoder later.
      { file: path.join(folder, 'truncated.png'), path: path.join(folder, 'truncated.png') },
      { file: missing, error: 'not found' },
      // b.png, named a second time, is classified once.
    ]);
    expect(skipped).toEqual([path.join(folder, 'Thumbs.db')]);
  });
});

describe('classifyFiles', () => {
  it('classifies the good files in batches, in order, and reports the broken ones without stopping', async () => {
    const folder = path.join(dir, 'folder');
    const { items } = await gatherImageFiles([folder, path.join(dir, 'missing.png'), cells[1]]);
    const progress: number[] = [];
    const before = tf.memory().numTensors;
    // Batches of 2 put broken and good files in the same batch.
    const results = await classifyFiles(model, metadata, items, {
      batchSize: 2,
      threshold: 0.5,
      onProgress: (done) => progress.push(done),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual([2, 4, 6]);
    expect(results.map((r) => r.file)).toEqual(items.map((i) => i.file));
    const failed = results.filter(isFailed);
    expect(failed.map((r) => path.basename(r.file))).toEqual(['notes.png', 'truncated.png', 'missing.png']);
    expect(failed[1].error).toMatch(/^cannot decode \(/);
    const good = results.filter((r): r is ClassifiedFile => !isFailed(r));
    expect(good.map((r) => path.basename(r.file))).toEqual(['b.png', 'a.png', path.basename(cells[1])]);
    for (const result of good) {
      const expected = await expectedProbabilities(result.file);
      result.probabilities.forEach((p, c) => expect(p).toBeCloseTo(expected[c], 5));
      const label = expected[0] >= 0.5 ? 0 : 1; // Parasitized is class 0
      expect(result.label).toBe(CLASS_NAMES[label]);
      expect(result.probability).toBe(result.probabilities[label]);
    }
  });

  it('decides two-class models by the threshold on P(Parasitized)', async () => {
    const items = cells.map((file) => ({ file, path: file }));
    const all = await classifyFiles(model, metadata, items, { batchSize: 8, threshold: 0 });
    expect(all.every((r) => !isFailed(r) && r.label === 'Parasitized')).toBe(true);
    const none = await classifyFiles(model, metadata, items, { batchSize: 8, threshold: 1.01 });
    expect(none.every((r) => !isFailed(r) && r.label === 'Uninfected')).toBe(true);
    // probability is that of the label given, so it falls below 0.5 when the threshold overrules the argmax.
    const [first] = all as ClassifiedFile[];
    const [firstNone] = none as ClassifiedFile[];
    expect(first.probability + firstNone.probability).toBeCloseTo(1, 5);
  });

  it("resizes each image and treats its colours the way the model's metadata says", async () => {
    // Every third column white: nearest sampling (96 -> 32) keeps only those, area keeps a third of the light.
    const stripes = path.join(dir, 'stripes.png');
    const pixels = Buffer.alloc(96 * 96 * 3);
    for (let i = 0; i < 96 * 96; i++) if (i % 3 === 1) pixels.fill(255, i * 3, i * 3 + 3);
    await sharp(pixels, { raw: { width: 96, height: 96, channels: 3 } })
      .png()
      .toFile(stripes);
    await saveBrightnessModel(path.join(dir, 'brightness'));
    const brightness = await loadModel(path.join(dir, 'brightness'));
    const pOf = async (
      resize: 'nearest' | 'area',
      stain: 'keep' | 'balance' = 'keep',
      stainReference?: [number, number, number],
    ) => {
      const [result] = await classifyFiles(
        brightness.model,
        { ...brightnessMetadata, resize, stain, stainReference },
        [{ file: 'stripes.png', path: stripes }],
        { batchSize: 1, threshold: 0.5 },
      );
      return (result as ClassifiedFile).probabilities[0];
    };
    // P(Parasitized) = sigmoid(10 (m - 0.5)) for the mean pixel m: 1 with nearest, 1/3 with area.
    expect(await pOf('nearest')).toBeCloseTo(1 / (1 + Math.exp(-5)), 4);
    expect(await pOf('area')).toBeCloseTo(1 / (1 + Math.exp(10 / 6)), 4);
    // Balanced, white (nearest) and grey (area) alike take the reference colour: m = mean(186, 155, 165) / 255.
    const balanced = 1 / (1 + Math.exp(-10 * (506 / 765 - 0.5)));
    expect(await pOf('nearest', 'balance')).toBeCloseTo(balanced, 2);
    expect(await pOf('area', 'balance')).toBeCloseTo(balanced, 2);
    // The reference saved with the model, not the constant: a dark grey one gives m = 51 / 255 = 0.2.
    expect(await pOf('nearest', 'balance', [51, 51, 51])).toBeCloseTo(1 / (1 + Math.exp(3)), 2);
    brightness.model.dispose();
  });

  it('refuses a model whose input does not match its metadata', async () => {
    await expect(
      classifyFiles(model, { ...metadata, imageSize: 48 }, [], { batchSize: 2, threshold: 0.5 }),
    ).rejects.toThrow(/takes 32x32x3 images but its metadata.json says 48x48x3/);
  });
});
