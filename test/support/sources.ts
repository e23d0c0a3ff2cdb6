// Training data without files: an in-memory BatchSource and a synthetic two-class image set.
import seedrandom from 'seedrandom';
import type { Batch, BatchSource, LabelledFile } from '../../src/input/types.js';
import { CLASS_NAMES } from './sample.js';

/** The synthetic images' size, which the tiny test models (models.ts) take. */
export const IMAGE_SIZE = 32;
export const CHANNELS = 3;

export interface MemorySourceOptions {
  /** Shuffle the order each epoch (seeded by seed and epoch), as a training source does. */
  shuffleSeed?: number;
  /** Lets a test tamper with one batch (for example put NaN in it). */
  transform?: (batch: Batch, epoch: number, index: number) => Batch;
}

/** A BatchSource over arrays already in memory: x holds n images of size*size*3 floats. */
export class MemorySource implements BatchSource {
  readonly files: readonly LabelledFile[];
  readonly batchesPerEpoch: number;
  readonly classNames: readonly string[] = CLASS_NAMES;
  /** Epochs whose batches were requested, in order. */
  readonly epochsRequested: number[] = [];

  constructor(
    private readonly x: Float32Array,
    private readonly labels: Int32Array,
    readonly imageSize: number,
    readonly batchSize: number,
    private readonly options: MemorySourceOptions = {},
  ) {
    this.files = Array.from(labels, (label, i) => ({ path: `memory/${i}.png`, label }));
    this.batchesPerEpoch = Math.ceil(labels.length / batchSize);
  }

  async *batches(epoch: number): AsyncIterable<Batch> {
    this.epochsRequested.push(epoch);
    const n = this.labels.length;
    const order = Array.from({ length: n }, (_, i) => i);
    if (this.options.shuffleSeed !== undefined) {
      const random = seedrandom(`${this.options.shuffleSeed}:${epoch}`);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    const pixels = this.imageSize * this.imageSize * CHANNELS;
    for (let index = 0, start = 0; start < n; index++, start += this.batchSize) {
      const ids = order.slice(start, start + this.batchSize);
      const x = new Float32Array(ids.length * pixels);
      ids.forEach((id, k) => x.set(this.x.subarray(id * pixels, (id + 1) * pixels), k * pixels));
      const batch: Batch = { x, labels: Int32Array.from(ids, (id) => this.labels[id]), size: ids.length };
      yield this.options.transform ? this.options.transform(batch, epoch, index) : batch;
    }
  }
}

/**
 * An easy two-class image set: class 0 images are dark (mean 0.3), class 1 bright (mean 0.7), each pixel with
 * uniform noise of +-0.25, so the classes overlap pixel by pixel but not on average. Labels alternate.
 */
export function syntheticImages(
  n: number,
  seed: number,
  imageSize = IMAGE_SIZE,
): { x: Float32Array; labels: Int32Array } {
  const random = seedrandom(String(seed));
  const pixels = imageSize * imageSize * CHANNELS;
  const x = new Float32Array(n * pixels);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    const mean = labels[i] === 0 ? 0.3 : 0.7;
    for (let p = 0; p < pixels; p++) x[i * pixels + p] = mean + (random() - 0.5) * 0.5;
  }
  return { x, labels };
}

export function syntheticSource(
  n: number,
  seed: number,
  batchSize: number,
  options: MemorySourceOptions = {},
): MemorySource {
  const { x, labels } = syntheticImages(n, seed);
  return new MemorySource(x, labels, IMAGE_SIZE, batchSize, options);
}
