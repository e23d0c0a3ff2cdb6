import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../../src/dataset/build.js';
import { scaleToUnit } from '../../src/input/augment.js';
import { decodeRgb } from '../../src/input/decode.js';
import { resizeImage, type ResizeMethod } from '../../src/input/resize.js';
import { balanceStain } from '../../src/input/stain.js';
import { openListSources, openSplitSources } from '../../src/input/sources.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, splitOptions } from '../support/sample.js';
import { preprocessingOf } from '../../src/input/preprocessing.js';

let dir: string;
const data = () => path.join(dir, 'data');

beforeAll(async () => {
  dir = await makeTempDir('malaria-sources-');
  await copySample(path.join(dir, 'cells'), 8);
  await buildDataset(splitOptions(path.join(dir, 'cells'), data()));
});

afterAll(async () => removeDir(dir));

/** The first training batch's pixels of epoch 0 with `rotation` (undefined: the default). */
async function firstBatch(rotation?: number, color?: number): Promise<Float32Array> {
  const { train } = await openSplitSources({
    data: data(),
    preprocessing: preprocessingOf({ imageSize: 24 }),
    batchSize: 4,
    seed: 3,
    rotation,
    color,
  });
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

  it('with --color, scales the channels of the same warped images: black background stays black', async () => {
    const plain = await firstBatch(20, 0);
    const coloured = await firstBatch(20, 0.3);
    expect(coloured).not.toEqual(plain);
    for (let i = 0; i < plain.length; i++) {
      if (plain[i] === 0) expect(coloured[i]).toBe(0);
      else expect(coloured[i] / plain[i]).toBeGreaterThan(0.69);
    }
  });

  it('resizes every split the same way: nearest by default, area when asked', async () => {
    const firstValidation = async (resize?: ResizeMethod) => {
      const { val } = await openSplitSources({
        data: data(),
        preprocessing: preprocessingOf({ imageSize: 24, resize }),
        batchSize: 4,
        seed: 3,
      });
      for await (const batch of val.batches(0)) return { x: batch.x.subarray(0, 24 * 24 * 3), file: val.files[0].path };
      throw new Error('no validation batch');
    };
    const expected = async (file: string, resize: ResizeMethod) => {
      const x = new Float32Array(24 * 24 * 3);
      scaleToUnit(resizeImage(await decodeRgb(file), 24, resize), x);
      return x;
    };
    const byDefault = await firstValidation();
    expect(byDefault.x).toEqual(await expected(byDefault.file, 'nearest'));
    const area = await firstValidation('area');
    expect(area.x).toEqual(await expected(area.file, 'area'));
    expect(area.x).not.toEqual(byDefault.x);
  });

  it('balances the stain of every split when asked, after the resize', async () => {
    const { val, train } = await openSplitSources({
      data: data(),
      preprocessing: preprocessingOf({ imageSize: 24, stain: 'balance' }),
      batchSize: 4,
      seed: 3,
    });
    const expected = new Float32Array(24 * 24 * 3);
    scaleToUnit(balanceStain(resizeImage(await decodeRgb(val.files[0].path), 24, 'nearest')), expected);
    for await (const batch of val.batches(0)) {
      expect(batch.x.subarray(0, 24 * 24 * 3)).toEqual(expected);
      break;
    }
    // The training images too: the same shuffle and warps as without, on balanced cells.
    const plain = await firstBatch();
    for await (const batch of train.batches(0)) {
      expect(batch.x.subarray(0, plain.length)).not.toEqual(plain);
      break;
    }
  });
});

describe('openListSources', () => {
  it('reads explicit file lists as the split folders are read: same batches, labels and class order', async () => {
    const options = {
      preprocessing: preprocessingOf({ imageSize: 24 }),
      batchSize: 4,
      seed: 3,
      rotation: 30,
      color: 0.1,
    };
    const folders = await openSplitSources({ data: data(), ...options });
    const lists = openListSources(
      {
        classNames: folders.train.classNames,
        train: folders.train.files,
        val: folders.val.files,
        test: folders.test.files,
      },
      options,
    );
    for (const split of ['train', 'val', 'test'] as const) {
      expect(lists[split].files).toEqual(folders[split].files);
      expect(lists[split].classNames).toEqual(folders[split].classNames);
      const batches = async (epoch: number, source = lists[split]) => {
        const all = [];
        for await (const batch of source.batches(epoch))
          all.push({ x: Array.from(batch.x), labels: Array.from(batch.labels) });
        return all;
      };
      expect(await batches(1)).toEqual(await batches(1, folders[split]));
    }
  });
});
