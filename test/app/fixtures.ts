// Inputs for the app tests: a tiny model folder, a folder of cell images in several formats, Node's reference
// probabilities for them, and Debian's chromium driven by playwright-core.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { chromium, type BrowserContext } from 'playwright-core';
import { tf } from '../../src/tf.js';
import { scaleToUnit } from '../../src/data/augment.js';
import { decodeResized } from '../../src/data/decode.js';
import { saveModel, type ModelMetadata } from '../../src/model/io.js';
import { buildResNet, resolveArchitecture, type ResNetOptions } from '../../src/model/resnet.js';
import { SAMPLE_DIR, sampleNames } from '../data/fixtures.js';

export const CLASS_NAMES = ['Parasitized', 'Uninfected'];
export const TINY: ResNetOptions = { inputSize: 32, classes: 2, stages: [1, 1, 1], filters: [4, 4, 8, 8], seed: 1 };

/** The network's inputs as training and `evaluate` prepare them: sharp decode, resizeNearest, x/255. */
export async function nodeInputs(files: readonly string[], size: number): Promise<Float32Array> {
  const pixels = size * size * 3;
  const x = new Float32Array(files.length * pixels);
  for (let i = 0; i < files.length; i++) scaleToUnit(await decodeResized(files[i], size), x, i * pixels);
  return x;
}

/** Class probabilities of each file, computed in Node (rows of `classes` numbers). */
export function predictRows(model: tf.LayersModel, x: Float32Array, count: number, size: number): number[][] {
  const values = tf.tidy(() => (model.predict(tf.tensor4d(x, [count, size, size, 3])) as tf.Tensor).dataSync());
  return Array.from({ length: count }, (_, i) => Array.from(values.slice(i * 2, i * 2 + 2)));
}

/**
 * Rescales the untrained classifier so the probabilities on `x` spread around 0.5 (logit difference with mean 0
 * and standard deviation 2). At initialisation they all sit near 0.53, where labels, the review band and the
 * Node/browser comparison would prove little; spread out, a change of preprocessing moves them visibly.
 */
export function spreadOutputs(model: tf.LayersModel, x: Float32Array, count: number): void {
  const size = model.inputs[0].shape[1] as number;
  const dense = model.layers.filter((layer) => layer.getClassName() === 'Dense').at(-1);
  if (!dense) throw new Error('the model has no dense classifier');
  const differences = predictRows(model, x, count, size).map(([p0, p1]) => Math.log(p0 / p1));
  const mean = differences.reduce((a, b) => a + b, 0) / count;
  const std = Math.sqrt(differences.reduce((a, d) => a + (d - mean) ** 2, 0) / count);
  const scale = 2 / std;
  const [kernel, bias] = dense.getWeights();
  const biasValues = bias.dataSync();
  // The logit difference becomes scale * (old - mean); the bias difference carries the shift.
  const newBias = tf.tensor1d([scale * biasValues[0] - (scale * mean) / 2, scale * biasValues[1] + (scale * mean) / 2]);
  const newKernel = kernel.mul(scale);
  dense.setWeights([newKernel, newBias]);
  tf.dispose([newKernel, newBias]);
}

export function tinyMetadata(extra: Partial<ModelMetadata> = {}): ModelMetadata {
  return {
    classNames: CLASS_NAMES,
    imageSize: TINY.inputSize,
    channels: 3,
    scaling: 'x/255',
    resize: 'nearest',
    architecture: resolveArchitecture(TINY),
    backend: 'cpu',
    created: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

/**
 * Saves a tiny untrained ResNet into `dir` (outputs spread over `files` when given); returns the model for Node
 * inference. `classes` > 2 builds a model with that many outputs.
 */
export async function writeTinyModel(dir: string, files: readonly string[] = [], extra: Partial<ModelMetadata> = {}): Promise<tf.LayersModel> {
  const model = buildResNet({ ...TINY, classes: extra.classNames?.length ?? TINY.classes });
  if (files.length > 1) spreadOutputs(model, await nodeInputs(files, TINY.inputSize), files.length);
  await saveModel(dir, model, tinyMetadata(extra));
  return model;
}

/**
 * `perClass` sample cells of each class copied into `dir`, plus the first cell re-encoded three ways: as a
 * grayscale PNG, a JPEG and an RGBA PNG (opaque), so the browser's decoding is compared with sharp's beyond
 * plain RGB PNGs. Returns the absolute paths, sorted by name (the page's order).
 */
export async function cellImages(dir: string, perClass: number): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const className of CLASS_NAMES) {
    for (const name of await sampleNames(className, perClass)) {
      const target = path.join(dir, `${className.toLowerCase()}-${name}`);
      await fs.copyFile(path.join(SAMPLE_DIR, className, name), target);
      files.push(target);
    }
  }
  const first = files[0];
  const variants: [string, ReturnType<typeof sharp>][] = [
    ['variant-gray.png', sharp(first).greyscale().png()],
    ['variant.jpg', sharp(first).jpeg({ quality: 90 })],
    ['variant-rgba.png', sharp(first).ensureAlpha().png()],
  ];
  for (const [name, image] of variants) {
    await image.toFile(path.join(dir, name));
    files.push(path.join(dir, name));
  }
  return files.sort((a, b) => path.basename(a).localeCompare(path.basename(b), undefined, { numeric: true }));
}

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Debian's chromium, headless, with the fresh profile folder `profileDir` (playwright passes it as
 * --user-data-dir, which it refuses in args); fails, never skips, when chromium is missing.
 */
export async function launchChromium(profileDir: string): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the browser tests need ${CHROMIUM}: install it with \`apt-get update && apt-get install -y chromium\` (.ci/run does)`);
  }
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    viewport: { width: 1200, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
