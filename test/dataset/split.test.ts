import { describe, expect, it } from 'vitest';
import { compareSplitItems, seededShuffle, splitByCell, splitSizes, type SplitItem } from '../../src/dataset/split.js';

const TUTORIAL = { trainSplit: 0.8, valSplit: 0.1 };

/** `count` synthetic images alternating between two classes, named like NIH cells. */
function syntheticImages(count: number): SplitItem[] {
  return Array.from({ length: count }, (_, i) => {
    const className = i % 2 === 0 ? 'Parasitized' : 'Uninfected';
    const name = `C${100 + (i % 97)}P${i % 61}ThinF_IMG_2015_cell_${i}.png`;
    return { className, name, relativePath: `${className}/${name}` };
  });
}

const paths = (items: readonly SplitItem[]): string[] => items.map((item) => item.relativePath);

describe('splitSizes', () => {
  it('gives the tutorial sizes for the full NIH set and for 12,000 images', () => {
    expect(splitSizes(27_558, TUTORIAL)).toEqual({ training: 19_842, validation: 2_204, testing: 5_512 });
    expect(splitSizes(12_000, TUTORIAL)).toEqual({ training: 8_640, validation: 960, testing: 2_400 });
  });

  it('rounds down like Python int(), including the small cases', () => {
    // 10: int(8.0) = 8 for training+validation, int(0.8) = 0 for validation.
    expect(splitSizes(10, TUTORIAL)).toEqual({ training: 8, validation: 0, testing: 2 });
    // 1: int(0.8) = 0, so the single image is a test image.
    expect(splitSizes(1, TUTORIAL)).toEqual({ training: 0, validation: 0, testing: 1 });
    expect(splitSizes(0, TUTORIAL)).toEqual({ training: 0, validation: 0, testing: 0 });
    // 200 (the bundled sample): 160 / 16.
    expect(splitSizes(200, TUTORIAL)).toEqual({ training: 144, validation: 16, testing: 40 });
    expect(splitSizes(1000, { trainSplit: 0.5, valSplit: 0.25 })).toEqual({
      training: 375,
      validation: 125,
      testing: 500,
    });
  });

  it('always accounts for every image', () => {
    for (const total of [2, 3, 7, 99, 101, 1234, 27_557]) {
      const { training, validation, testing } = splitSizes(total, { trainSplit: 0.73, valSplit: 0.17 });
      expect(training + validation + testing).toBe(total);
      expect(Math.min(training, validation, testing)).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('seededShuffle', () => {
  it('is a permutation that depends only on the seed', () => {
    const items = Array.from({ length: 500 }, (_, i) => i);
    const a = seededShuffle(items, 42);
    expect([...a].sort((x, y) => x - y)).toEqual(items);
    expect(seededShuffle(items, 42)).toEqual(a);
    expect(seededShuffle(items, 43)).not.toEqual(a);
    expect(a).not.toEqual(items);
    expect(items[0]).toBe(0); // the input is not shuffled in place
  });
});

describe('splitByCell', () => {
  it('cuts 27,558 images into 19,842 / 2,204 / 5,512 disjoint parts covering everything', () => {
    const images = syntheticImages(27_558);
    const split = splitByCell(images, { ...TUTORIAL, seed: 42 });
    expect([split.training.length, split.validation.length, split.testing.length]).toEqual([19_842, 2_204, 5_512]);
    const all = [...paths(split.training), ...paths(split.validation), ...paths(split.testing)];
    expect(new Set(all).size).toBe(27_558);
    expect(new Set(all)).toEqual(new Set(paths(images)));
  });

  it('cuts 12,000 images into 8,640 / 960 / 2,400', () => {
    const split = splitByCell(syntheticImages(12_000), { ...TUTORIAL, seed: 7 });
    expect([split.training.length, split.validation.length, split.testing.length]).toEqual([8_640, 960, 2_400]);
  });

  it('is deterministic: same seed gives the same split whatever the input order', () => {
    const images = syntheticImages(1_000);
    const reversed = [...images].reverse();
    const shuffled = seededShuffle(images, 'any other order');
    const a = splitByCell(images, { ...TUTORIAL, seed: 42 });
    for (const input of [reversed, shuffled]) {
      const b = splitByCell(input, { ...TUTORIAL, seed: 42 });
      expect(paths(b.training)).toEqual(paths(a.training));
      expect(paths(b.validation)).toEqual(paths(a.validation));
      expect(paths(b.testing)).toEqual(paths(a.testing));
    }
  });

  it('changes with the seed', () => {
    const images = syntheticImages(1_000);
    const a = splitByCell(images, { ...TUTORIAL, seed: 42 });
    const b = splitByCell(images, { ...TUTORIAL, seed: 43 });
    expect(new Set(paths(b.testing))).not.toEqual(new Set(paths(a.testing)));
    expect(b.testing.length).toBe(a.testing.length);
  });

  it('takes validation from the training part, not from testing', () => {
    const images = syntheticImages(400);
    const plain = splitByCell(images, { trainSplit: 0.8, valSplit: 0.1, seed: 5 });
    const moreVal = splitByCell(images, { trainSplit: 0.8, valSplit: 0.5, seed: 5 });
    // Same shuffle and same trainSplit: the test set does not move when only valSplit changes.
    expect(paths(moreVal.testing)).toEqual(paths(plain.testing));
    expect(moreVal.validation.length).toBe(160);
  });
});

describe('compareSplitItems', () => {
  it('orders by class, then file name, then relative path', () => {
    const items: SplitItem[] = [
      { className: 'Uninfected', name: 'a.png', relativePath: 'Uninfected/a.png' },
      { className: 'Parasitized', name: 'b.png', relativePath: 'x/Parasitized/b.png' },
      { className: 'Parasitized', name: 'b.png', relativePath: 'Parasitized/b.png' },
      { className: 'Parasitized', name: 'a.png', relativePath: 'z/Parasitized/a.png' },
    ];
    expect(paths([...items].sort(compareSplitItems))).toEqual([
      'z/Parasitized/a.png',
      'Parasitized/b.png',
      'x/Parasitized/b.png',
      'Uninfected/a.png',
    ]);
  });
});
