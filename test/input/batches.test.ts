import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scaleToUnit } from '../../src/input/augment.js';
import {
  createBatchSource,
  epochChannelGains,
  shuffledOrder,
  type BatchSourceOptions,
  type DecodeImage,
} from '../../src/input/batches.js';
import { DecodeError, decodeCell } from '../../src/input/decode.js';
import type { Batch } from '../../src/input/types.js';
import { UserError } from '../../src/errors.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample } from '../support/sample.js';
import { preprocessingOf } from '../../src/input/preprocessing.js';

const SIZE = 16;
const PIXELS = SIZE * SIZE * 3;

let root: string;
/** 6 Parasitized + 4 Uninfected real sample PNGs in `<root>/training/<Class>/`. */
let split: string;
/** 40 images (20 per class), for the prefetch and cancellation tests. */
let bigSplit: string;

beforeAll(async () => {
  root = await makeTempDir('malaria-batches-');
  split = path.join(root, 'training');
  await copySample(split, { Parasitized: 6, Uninfected: 4 });
  bigSplit = path.join(root, 'big');
  await copySample(bigSplit, { Parasitized: 20, Uninfected: 20 });
});

afterAll(async () => removeDir(root));

const training = (overrides: Partial<BatchSourceOptions> = {}): BatchSourceOptions => ({
  dir: split,
  preprocessing: preprocessingOf({ imageSize: SIZE }),
  batchSize: 4,
  augment: true,
  shuffle: true,
  seed: 7,
  ...overrides,
});

async function collect(batches: AsyncIterable<Batch>): Promise<Batch[]> {
  const all: Batch[] = [];
  for await (const batch of batches) all.push(batch);
  return all;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A decoder that paints file i (in listing order) one flat colour, 10 * (i + 1), so a batch slot tells which
 * file it holds even after augmentation (any affine warp of a flat image is the same flat image).
 */
function flatDecoder(files: () => readonly { path: string }[], counter = { calls: 0 }): DecodeImage {
  return async (file, size) => {
    counter.calls++;
    const index = files().findIndex((f) => f.path === file);
    return new Uint8Array(size * size * 3).fill(10 * (index + 1));
  };
}

const fileInSlot = (batch: Batch, slot: number): number => Math.round(batch.x[slot * PIXELS] * 255) / 10 - 1;

/** The real decoder, counting its calls. */
function countingDecoder(counter: { calls: number }, delay?: (file: string) => number): DecodeImage {
  return async (file, size) => {
    counter.calls++;
    if (delay) await sleep(delay(file));
    return decodeCell(file, preprocessingOf({ imageSize: size }));
  };
}

describe('createBatchSource on real sample images', () => {
  it('yields batches of the right shape, values in [0, 1], sorted classes and a short last batch', async () => {
    const source = await createBatchSource(training());
    expect(source.classNames).toEqual(['Parasitized', 'Uninfected']);
    expect(source.files).toHaveLength(10);
    expect(source.batchesPerEpoch).toBe(3);
    const batches = await collect(source.batches(0));
    expect(batches.map((b) => b.size)).toEqual([4, 4, 2]);
    for (const batch of batches) {
      expect(batch.x).toHaveLength(batch.size * PIXELS);
      expect(batch.labels).toHaveLength(batch.size);
      expect(batch.x.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect([...batch.labels].every((l) => l === 0 || l === 1)).toBe(true);
    }
    expect(batches.flatMap((b) => [...b.labels]).filter((l) => l === 0)).toHaveLength(6);
  });

  it('evaluation keeps file order, does not augment (only resize and scale) and repeats exactly', async () => {
    const source = await createBatchSource(training({ augment: false, shuffle: false }));
    const epoch0 = await collect(source.batches(0));
    const epoch3 = await collect(source.batches(3));
    expect(epoch0.flatMap((b) => [...b.labels])).toEqual(source.files.map((f) => f.label));
    const x = Float32Array.from(epoch0.flatMap((b) => [...b.x]));
    const expected = new Float32Array(source.files.length * PIXELS);
    for (const [i, file] of source.files.entries())
      scaleToUnit(await decodeCell(file.path, preprocessingOf({ imageSize: SIZE })), expected, i * PIXELS);
    expect(x).toEqual(expected);
    expect(epoch3.map((b) => [...b.x])).toEqual(epoch0.map((b) => [...b.x]));
  });

  it('augments reproducibly: same (seed, epoch) gives identical floats, whatever order the decodes finish in', async () => {
    const fast = await createBatchSource(training());
    const epoch1 = await collect(fast.batches(1));
    // A resumed run: a fresh source that starts at epoch 1, with decodes finishing in a different order.
    const slowFirst = await createBatchSource(
      training({ decode: countingDecoder({ calls: 0 }, (file) => (file.includes('Parasitized') ? 30 : 0)) }),
    );
    const resumed = await collect(slowFirst.batches(1));
    expect(resumed.map((b) => [...b.x])).toEqual(epoch1.map((b) => [...b.x]));
    expect(resumed.map((b) => [...b.labels])).toEqual(epoch1.map((b) => [...b.labels]));
    const otherSeed = await collect((await createBatchSource(training({ seed: 8 }))).batches(1));
    expect(otherSeed.map((b) => [...b.x])).not.toEqual(epoch1.map((b) => [...b.x]));
    // and augmentation really changed the pixels
    const plain = await collect((await createBatchSource(training({ augment: false }))).batches(1));
    expect(plain.map((b) => [...b.labels])).toEqual(epoch1.map((b) => [...b.labels]));
    expect(plain.map((b) => [...b.x])).not.toEqual(epoch1.map((b) => [...b.x]));
  });

  it('decodes each file once and serves later epochs from the cache', async () => {
    const counter = { calls: 0 };
    const source = await createBatchSource(training({ decode: countingDecoder(counter) }));
    await collect(source.batches(0));
    expect(counter.calls).toBe(10);
    await collect(source.batches(1));
    expect(counter.calls).toBe(10);
    expect(source.stats.cacheHits).toBe(10);
    expect(source.cache.bytes).toBe(10 * PIXELS);
  });

  it('decodes again the images beyond the cache budget', async () => {
    const counter = { calls: 0 };
    const source = await createBatchSource(training({ decode: countingDecoder(counter), cacheBytes: 3 * PIXELS }));
    await collect(source.batches(0));
    await collect(source.batches(1));
    expect(source.cache.size).toBe(3);
    expect(counter.calls).toBe(10 + 7);
  });

  it('skips a file that fails to decode, reports it once, and does not retry it', async () => {
    const broken = path.join(root, 'broken');
    await copySample(broken, { Parasitized: 3, Uninfected: 3 });
    // A PNG signature followed by garbage: listed as an image, fails in sharp.
    const good = (await fsp.readdir(path.join(broken, 'Uninfected'))).sort()[0];
    const bytes = await fsp.readFile(path.join(broken, 'Uninfected', good));
    const truncated = path.join(broken, 'Uninfected', 'truncated.png');
    await fsp.writeFile(truncated, bytes.subarray(0, 64));
    const reported: string[] = [];
    const counter = { calls: 0 };
    const source = await createBatchSource(
      training({ dir: broken, batchSize: 3, decode: countingDecoder(counter), onSkip: (s) => reported.push(s.path) }),
    );
    expect(source.files).toHaveLength(7);
    for (const epoch of [0, 1]) {
      const batches = await collect(source.batches(epoch));
      expect(batches.reduce((n, b) => n + b.size, 0)).toBe(6);
      for (const b of batches) expect(b.x).toHaveLength(b.size * PIXELS);
    }
    expect(reported).toEqual([truncated]);
    expect(source.skipped).toHaveLength(1);
    expect(source.skipped[0].reason).toMatch(/cannot decode/);
    expect(counter.calls).toBe(7); // 6 good + 1 failed attempt, none in epoch 1
  });

  it('throws a UserError for a missing folder', async () => {
    await expect(createBatchSource(training({ dir: path.join(root, 'missing') }))).rejects.toThrow(UserError);
  });
});

describe('batch order and labels (flat synthetic images)', () => {
  async function flatSource(overrides: Partial<BatchSourceOptions> = {}) {
    let files: readonly { path: string }[] = [];
    const source = await createBatchSource(training({ decode: flatDecoder(() => files), ...overrides }));
    files = source.files;
    return source;
  }

  it('serves every file exactly once per epoch, with its own label, in an order that changes per epoch', async () => {
    const source = await flatSource();
    const orders: number[][] = [];
    for (const epoch of [0, 1, 2]) {
      const order: number[] = [];
      for (const batch of await collect(source.batches(epoch))) {
        for (let slot = 0; slot < batch.size; slot++) {
          const file = fileInSlot(batch, slot);
          expect(batch.labels[slot]).toBe(source.files[file].label);
          order.push(file);
        }
      }
      expect([...order].sort((a, b) => a - b)).toEqual([...source.files.keys()]);
      orders.push(order);
    }
    expect(orders[1]).not.toEqual(orders[0]);
    expect(orders[2]).not.toEqual(orders[1]);
    expect(orders[0]).toEqual([...shuffledOrder(10, 7, 0)]);
  });

  it('reproduces the order of (seed, epoch) in a new source, and another seed gives another order', async () => {
    const first = await collect((await flatSource()).batches(2));
    const again = await collect((await flatSource()).batches(2));
    const other = await collect((await flatSource({ seed: 99 })).batches(2));
    const order = (batches: Batch[]) =>
      batches.flatMap((b) => Array.from({ length: b.size }, (_, s) => fileInSlot(b, s)));
    expect(order(again)).toEqual(order(first));
    expect(order(other)).not.toEqual(order(first));
  });

  it('yields no batch for a batch whose files all fail, and skips only that file', async () => {
    let files: readonly { path: string }[] = [];
    const flat = flatDecoder(() => files);
    const source = await createBatchSource(
      training({
        batchSize: 1,
        shuffle: false,
        decode: async (file, size) => {
          if (file === files[2].path) throw new DecodeError(file, 'synthetic failure');
          return flat(file, size);
        },
      }),
    );
    files = source.files;
    const batches = await collect(source.batches(0));
    expect(batches.map((b) => fileInSlot(b, 0))).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('lets errors other than a bad image stop the epoch', async () => {
    const source = await createBatchSource(
      training({
        decode: async () => {
          throw new Error('disk on fire');
        },
      }),
    );
    await expect(collect(source.batches(0))).rejects.toThrow('disk on fire');
  });
});

describe('prefetch', () => {
  it('never produces more than `prefetch` batches ahead of the consumer', async () => {
    const counter = { calls: 0 };
    let files: readonly { path: string }[] = [];
    const source = await createBatchSource(
      training({ dir: bigSplit, batchSize: 2, prefetch: 2, decode: flatDecoder(() => files, counter) }),
    );
    files = source.files;
    const iterator = source.batches(0)[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    await sleep(100); // an idle consumer: the producer fills its window and stops
    // the batch the consumer holds + 2 ahead, 2 files each
    expect(counter.calls).toBeLessThanOrEqual(6);
    expect(counter.calls).toBeGreaterThanOrEqual(4); // it did work ahead
    let seen = 1;
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
      seen++;
      await sleep(1);
      expect(counter.calls).toBeLessThanOrEqual((seen + 2) * 2);
    }
    expect(seen).toBe(20);
    expect(source.stats.peakBatchesInFlight).toBe(2);
  });

  it('keeps at most `decodesInFlight` decodes running', async () => {
    let running = 0;
    let peak = 0;
    const source = await createBatchSource(
      training({
        dir: bigSplit,
        decodesInFlight: 3,
        prefetch: 4,
        decode: async (file, size) => {
          running++;
          peak = Math.max(peak, running);
          await sleep(2);
          running--;
          return decodeCell(file, preprocessingOf({ imageSize: size }));
        },
      }),
    );
    await collect(source.batches(0));
    expect(peak).toBe(3);
    expect(source.stats.peakDecodesInFlight).toBe(3);
  });

  it('stops producing when the consumer breaks early', async () => {
    const counter = { calls: 0 };
    let files: readonly { path: string }[] = [];
    const flat = flatDecoder(() => files, counter);
    const source = await createBatchSource(
      training({
        dir: bigSplit,
        batchSize: 4,
        prefetch: 2,
        decodesInFlight: 2,
        decode: async (file, size) => {
          const image = await flat(file, size);
          await sleep(5);
          return image;
        },
      }),
    );
    files = source.files;
    let batches = 0;
    for await (const batch of source.batches(0)) {
      expect(batch.size).toBe(4);
      batches++;
      break;
    }
    const callsAtBreak = counter.calls;
    await sleep(150);
    expect(batches).toBe(1);
    expect(counter.calls).toBe(callsAtBreak);
    expect(counter.calls).toBeLessThan(4 * 3 + 2); // consumed + window + decodes in flight, far below 40
    // the source still works for the next epoch
    expect((await collect(source.batches(1))).reduce((n, b) => n + b.size, 0)).toBe(40);
  });
});

describe('epochChannelGains (colour augmentation)', () => {
  it('draws three factors per position within the range, reproducibly per (seed, epoch)', () => {
    const gains = epochChannelGains(50, 4, 2, 0.2);
    expect(gains).toHaveLength(150);
    expect(Math.min(...gains)).toBeGreaterThanOrEqual(0.8);
    expect(Math.max(...gains)).toBeLessThanOrEqual(1.2);
    expect(Math.max(...gains) - Math.min(...gains)).toBeGreaterThan(0.2);
    expect(epochChannelGains(50, 4, 2, 0.2)).toEqual(gains);
    expect(epochChannelGains(50, 4, 3, 0.2)).not.toEqual(gains);
  });
});
