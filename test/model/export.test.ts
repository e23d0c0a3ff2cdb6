import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { exportModel } from '../../src/model/export.js';
import { REFERENCE_CELL_COLOUR } from '../../src/input/stain.js';
import { loadModel, saveModel, type ModelMetadata } from '../../src/model/io.js';
import { trainStep } from '../../src/model/train.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { IMAGE_SIZE, noBatchNormModel, tinyMetadata, tinyResNet } from '../support/models.js';
import { syntheticImages } from '../support/sources.js';

// A threshold and a temperature, which every export must carry along.
const metadata = tinyMetadata({ threshold: 0.3, temperature: 1.7 });

let dir: string;
let model: tf.LayersModel;
const modelDir = () => path.join(dir, 'model');
const images = syntheticImages(8, 21);

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-export-');
  // A few SGD steps move the weights and the batch-norm statistics away from their initial constants.
  model = tinyResNet(5);
  const optimizer = tf.train.momentum(0.05, 0.9);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let step = 0; step < 3; step++) await trainStep(model, optimizer, variables, images.x, images.labels, 8, 2);
  optimizer.dispose();
  // Sharpen the head so the outputs spread over (0, 1) instead of sitting at 0.5, where errors would hide.
  const head = model.getLayer('head_dense');
  const [kernel, bias] = head.getWeights(); // the variables' own tensors: not ours to dispose
  const sharpened = kernel.mul(40);
  head.setWeights([sharpened, bias]);
  sharpened.dispose();
  await saveModel(modelDir(), model, metadata);
});

afterAll(async () => {
  model?.dispose();
  await removeDir(dir);
});

/** Loads an exported folder with stock tfjs only: the files' bytes handed to tf.io.fromMemory. */
async function stockLoad(
  folder: string,
): Promise<{ model: tf.LayersModel; specs: tf.io.WeightsManifestEntry[]; weightData: ArrayBuffer }> {
  const json = JSON.parse(await fs.readFile(path.join(folder, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  expect(json.weightsManifest).toHaveLength(1);
  expect(json.weightsManifest[0].paths).toEqual(['./weights.bin']);
  const bytes = await fs.readFile(path.join(folder, 'weights.bin'));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const specs = json.weightsManifest[0].weights;
  const loaded = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }),
  );
  return { model: loaded, specs, weightData };
}

function predict(m: tf.LayersModel): Float32Array {
  return tf.tidy(
    () => (m.predict(tf.tensor4d(images.x, [8, IMAGE_SIZE, IMAGE_SIZE, 3])) as tf.Tensor).dataSync() as Float32Array,
  );
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  return a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i])), 0);
}

function valuesOf(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

describe('exportModel', () => {
  const original = () => predict(model);

  it('uint8: stock tf.loadLayersModel reads it, every weight within scale/2, outputs within quantization error', async () => {
    const out = path.join(dir, 'uint8');
    const result = await exportModel({ modelDir: modelDir(), outDir: out, quantization: 'uint8' });
    const { model: loaded, specs, weightData } = await stockLoad(out);
    try {
      // The weights, decoded by tfjs, against the originals, name by name.
      const decoded = tf.io.decodeWeights(weightData, specs);
      const originals = new Map(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
      let kernels = 0;
      let vectors = 0;
      for (const spec of specs) {
        const before = originals.get(spec.name)!;
        const after = decoded[spec.name].dataSync();
        expect(after.length, spec.name).toBe(before.length);
        const q = spec.quantization!;
        if (spec.shape.length >= 2) {
          kernels += valuesOf(spec.shape);
          expect(q.dtype).toBe('uint8');
          before.forEach((v, i) => expect(Math.abs(after[i] - v)).toBeLessThanOrEqual(q.scale! / 2 + 1e-7));
        } else {
          vectors += valuesOf(spec.shape);
          expect(q.dtype).toBe('float16');
          before.forEach((v, i) =>
            expect(Math.abs(after[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25)),
          );
        }
      }
      tf.dispose(decoded);
      expect(specs).toHaveLength(model.weights.length);
      // One byte per kernel value, two per vector value: the exact size of weights.bin.
      const size = (await fs.stat(path.join(out, 'weights.bin'))).size;
      expect(size).toBe(kernels + 2 * vectors);
      expect(result.float32WeightBytes).toBe(4 * (kernels + vectors));
      expect(result.files.find((f) => f.name === 'weights.bin')?.bytes).toBe(size);
      // This tiny net is 28% vectors, so it lands above 1/4; a kernel-heavy net lands on 1/4 (test below).
      expect(size / result.float32WeightBytes).toBeGreaterThan(0.25);
      expect(size / result.float32WeightBytes).toBeLessThan(0.35);

      const difference = maxDifference(predict(loaded), original());
      // Measured 0.012 on outputs spread over 0.04..0.96; a wrong decoding would move them by tenths.
      expect(difference).toBeLessThan(0.05);
      expect(result.maxProbabilityDifference).toBeLessThan(0.05);
      expect(result.maxWeightError).toBeGreaterThan(0);
      expect(result.maxWeightError).toBeLessThanOrEqual(1 / 255 + 1e-6);
      const kernelCount = specs.filter((s) => s.shape.length >= 2).length;
      expect(result.counts).toEqual({ uint8: kernelCount, float16: specs.length - kernelCount, float32: 0, other: 0 });
    } finally {
      loaded.dispose();
    }
  });

  it('float16: half the float32 bytes, outputs within float16 error', async () => {
    const out = path.join(dir, 'float16');
    const result = await exportModel({ modelDir: modelDir(), outDir: out, quantization: 'float16' });
    const { model: loaded, specs } = await stockLoad(out);
    try {
      expect(specs.every((s) => s.dtype === 'float32' && s.quantization?.dtype === 'float16')).toBe(true);
      const size = (await fs.stat(path.join(out, 'weights.bin'))).size;
      expect(size * 2).toBe(result.float32WeightBytes);
      const difference = maxDifference(predict(loaded), original());
      // Measured 8e-4 (half precision keeps 11 bits of every weight).
      expect(difference).toBeLessThan(3e-3);
    } finally {
      loaded.dispose();
    }
  });

  it('none: the same float32 weights, identical outputs', async () => {
    const out = path.join(dir, 'none');
    const result = await exportModel({ modelDir: modelDir(), outDir: out, quantization: 'none' });
    const { model: loaded, specs } = await stockLoad(out);
    try {
      expect(specs.every((s) => s.quantization === undefined)).toBe(true);
      expect((await fs.stat(path.join(out, 'weights.bin'))).size).toBe(result.float32WeightBytes);
      expect(maxDifference(predict(loaded), original())).toBe(0);
      expect(result.maxProbabilityDifference).toBe(0);
    } finally {
      loaded.dispose();
    }
  });

  it('copies metadata.json with the quantization noted, and our own loader reads the folder', async () => {
    const out = path.join(dir, 'uint8');
    const written = JSON.parse(await fs.readFile(path.join(out, 'metadata.json'), 'utf8'));
    expect(written).toEqual({ ...metadata, quantization: 'uint8' });
    const plain = JSON.parse(await fs.readFile(path.join(dir, 'none', 'metadata.json'), 'utf8'));
    expect(plain).toEqual(metadata);
    // Exporting an export: said so, and the new encoding replaces the old one in metadata.json.
    const again = await exportModel({
      modelDir: out,
      outDir: path.join(dir, 'again'),
      quantization: 'float16',
      checkImages: 0,
    });
    expect(again.sourceQuantization).toBe('uint8');
    expect(JSON.parse(await fs.readFile(path.join(dir, 'again', 'metadata.json'), 'utf8')).quantization).toBe(
      'float16',
    );
    const ours = await loadModel(out);
    try {
      expect(ours.metadata.threshold).toBe(0.3);
      expect(ours.metadata.temperature).toBe(1.7);
      const stock = await stockLoad(out);
      expect(maxDifference(predict(ours.model), predict(stock.model))).toBe(0);
      stock.model.dispose();
    } finally {
      ours.model.dispose();
    }
  });

  it('carries the positive class and the stain reference, and writes out those an older model was trained with', async () => {
    const exported = async (name: string, saved: object) => {
      const source = path.join(dir, `${name}-model`);
      await saveModel(source, model, saved as unknown as ModelMetadata);
      await exportModel({ modelDir: source, outDir: path.join(dir, name), quantization: 'float16', checkImages: 0 });
      return JSON.parse(await fs.readFile(path.join(dir, name, 'metadata.json'), 'utf8'));
    };
    const sick = tinyMetadata({
      classNames: ['Healthy', 'Sick'],
      positiveClass: 'Sick',
      stain: 'balance',
      stainReference: [150, 120.5, 140],
    });
    expect(await exported('sick', sick)).toEqual({ ...sick, quantization: 'float16' });
    // Saved before either field was: Parasitized and the constant reference, now written down.
    const { positiveClass: _unsaid, ...older } = tinyMetadata({ stain: 'balance' });
    expect(await exported('older', older)).toMatchObject({
      positiveClass: 'Parasitized',
      stain: 'balance',
      stainReference: [...REFERENCE_CELL_COLOUR],
    });
  });

  it('a kernel-heavy model shrinks to about 1/4 with uint8', async () => {
    const dense = noBatchNormModel(9);
    try {
      const source = path.join(dir, 'dense-model');
      await saveModel(source, dense, metadata);
      const result = await exportModel({
        modelDir: source,
        outDir: path.join(dir, 'dense-uint8'),
        quantization: 'uint8',
        checkImages: 0,
      });
      const ratio = result.files.find((f) => f.name === 'weights.bin')!.bytes / result.float32WeightBytes;
      expect(ratio).toBeGreaterThanOrEqual(0.25);
      expect(ratio).toBeLessThan(0.26);
      expect(result.maxProbabilityDifference).toBeUndefined();
    } finally {
      dense.dispose();
    }
  });

  it('replaces an earlier export only with --force, never a folder holding anything else, and never the model', async () => {
    const out = path.join(dir, 'busy');
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, 'notes.txt'), 'keep me');
    // Someone's folder: refused with or without --force, untouched.
    for (const force of [false, true]) {
      await expect(exportModel({ modelDir: modelDir(), outDir: out, quantization: 'uint8', force })).rejects.toThrow(
        /^--out .*busy holds files that are not a model written by `malaria train` or `malaria export` \(notes\.txt is not a file this tool writes\)/,
      );
      expect(await fs.readdir(out)).toEqual(['notes.txt']);
    }

    const earlier = path.join(dir, 'earlier');
    await exportModel({ modelDir: modelDir(), outDir: earlier, quantization: 'float16', checkImages: 0 });
    await expect(exportModel({ modelDir: modelDir(), outDir: earlier, quantization: 'uint8' })).rejects.toThrow(
      /already holds a model; pass --force/,
    );
    await exportModel({ modelDir: modelDir(), outDir: earlier, quantization: 'uint8', force: true, checkImages: 0 });
    expect((await fs.readdir(earlier)).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    expect(JSON.parse(await fs.readFile(path.join(earlier, 'metadata.json'), 'utf8')).quantization).toBe('uint8');
    // No temporary folders are left beside it.
    expect((await fs.readdir(dir)).filter((name) => name.startsWith('.'))).toEqual([]);

    // The model folder itself, a folder holding it, and a folder inside it.
    for (const [target, relation] of [
      [modelDir(), 'is'],
      [dir, 'contains'],
      [path.join(modelDir(), 'q'), 'lies inside'],
    ]) {
      await expect(
        exportModel({ modelDir: modelDir(), outDir: target, quantization: 'uint8', force: true }),
      ).rejects.toThrow(
        new RegExp(`^--out ${target} ${relation} the model folder .*, which this command reads and must not change`),
      );
    }
    expect((await fs.readdir(modelDir())).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    // An empty existing folder is fine without --force.
    await fs.mkdir(path.join(dir, 'empty'));
    await exportModel({
      modelDir: modelDir(),
      outDir: path.join(dir, 'empty'),
      quantization: 'float16',
      checkImages: 0,
    });
    expect((await fs.readdir(path.join(dir, 'empty'))).length).toBe(3);
  });
});

describe('exportModel: what --force may replace', () => {
  it("refuses a folder of only model.json and weights.bin (any TensorFlow.js program's model.save), even with --force", async () => {
    const tfjs = path.join(dir, 'tfjs');
    await fs.mkdir(tfjs);
    for (const name of ['model.json', 'weights.bin'])
      await fs.copyFile(path.join(modelDir(), name), path.join(tfjs, name));
    await expect(
      exportModel({ modelDir: modelDir(), outDir: tfjs, quantization: 'uint8', force: true }),
    ).rejects.toThrow(
      /\(it has no metadata\.json of ours and no checkpoint with our state\.json\); nothing was changed/,
    );
    expect((await fs.readdir(tfjs)).sort()).toEqual(['model.json', 'weights.bin']);
  });

  it('checks --out again right before the swap: a file someone put there meanwhile stops it, the earlier export kept', async () => {
    const out = path.join(dir, 'checked-twice');
    await exportModel({ modelDir: modelDir(), outDir: out, quantization: 'float16', checkImages: 0 });
    const before = await fs.readFile(path.join(out, 'weights.bin'));
    const open = fs.open.bind(fs);
    const spy = vi.spyOn(fs, 'open').mockImplementation(async (file, ...rest) => {
      // The new export is being written beside --out: someone saves their notes into --out at that moment.
      if (path.basename(path.dirname(String(file))).startsWith('.checked-twice.malaria-tmp-'))
        await fs.writeFile(path.join(out, 'notes.txt'), 'mine').catch(() => undefined);
      return open(file, ...rest);
    });
    try {
      await expect(
        exportModel({ modelDir: modelDir(), outDir: out, quantization: 'uint8', force: true, checkImages: 0 }),
      ).rejects.toThrow(/\(notes\.txt is not a file this tool writes\); nothing was changed/);
    } finally {
      spy.mockRestore();
    }
    expect((await fs.readdir(out)).sort()).toEqual(['metadata.json', 'model.json', 'notes.txt', 'weights.bin']);
    expect(await fs.readFile(path.join(out, 'weights.bin'))).toEqual(before);
    expect((await fs.readdir(dir)).filter((name) => name.startsWith('.checked-twice.'))).toEqual([]);
  });
});
