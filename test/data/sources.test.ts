import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../../src/data/build-dataset.js';
import { openSplitSources } from '../../src/data/sources.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, splitOptions } from '../support/sample.js';

let dir: string;
const data = () => path.join(dir, 'data');

beforeAll(async () => {
  dir = await makeTempDir('malaria-sources-');
  await copySample(path.join(dir, 'cells'), 8);
  await buildDataset(splitOptions(path.join(dir, 'cells'), data()));
});

afterAll(async () => removeDir(dir));

/** The first training batch's pixels of epoch 0 with `rotation` (undefined: the default). */
async function firstBatch(rotation?: number): Promise<Float32Array> {
  const { train } = await openSplitSources({ data: data(), imageSize: 24, batchSize: 4, seed: 3, rotation });
  for await (const batch of train.batches(0)) return Float32Array.from(batch.x.subarray(0, batch.size * 24 * 24 * 3));
  throw new Error('no training batch');
}

describe('openSplitSources', () => {
  it('augments the training images with the rotation asked for (the tutorial’s 20 degrees by default)', async () => {
    const byDefault = await firstBatch();
    expect(await firstBatch(20)).toEqual(byDefault);
    const wide = await firstBatch(180);
    expect(wide).not.toEqual(byDefault);
  });
});
