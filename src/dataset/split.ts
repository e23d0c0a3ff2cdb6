// The train/validation/test split of the Keras tutorial (build_dataset.py), made reproducible:
// sort, seeded Fisher-Yates shuffle, first floor(trainSplit * N) to training, the rest to testing,
// then the first floor(valSplit * training) of training to validation.
import seedrandom from 'seedrandom';

/** Code-unit order (like Python's sorted() for these names): no locale, so every machine agrees. */
export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** What the split needs to know about an image (sort key). */
export interface SplitItem {
  className: string;
  name: string;
  relativePath: string;
}

export interface SplitFractions {
  /** Fraction of all images that go to training + validation (the rest is testing). */
  trainSplit: number;
  /** Fraction of the training part held out for validation. */
  valSplit: number;
}

export interface SplitOptions extends SplitFractions {
  seed: number | string;
}

export interface SplitSizes {
  training: number;
  validation: number;
  testing: number;
}

export interface SplitAssignment<T> {
  training: T[];
  validation: T[];
  testing: T[];
}

/**
 * Sizes exactly as the tutorial computes them (Python's int() of the same double product), so
 * 27,558 images give 19,842 / 2,204 / 5,512 and 12,000 give 8,640 / 960 / 2,400.
 */
export function splitSizes(total: number, { trainSplit, valSplit }: SplitFractions): SplitSizes {
  const trainAndVal = Math.floor(trainSplit * total);
  const validation = Math.floor(valSplit * trainAndVal);
  return { training: trainAndVal - validation, validation, testing: total - trainAndVal };
}

/** Sort key of the split: class, then file name, then relative path (independent of walk order and platform). */
export function compareSplitItems(a: SplitItem, b: SplitItem): number {
  return (
    compareStrings(a.className, b.className) ||
    compareStrings(a.name, b.name) ||
    compareStrings(a.relativePath, b.relativePath)
  );
}

/** Fisher-Yates with seedrandom's ARC4 generator: the same seed gives the same order on every platform. */
export function seededShuffle<T>(items: readonly T[], seed: number | string): T[] {
  const random = seedrandom(String(seed));
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Splits individual images (the tutorial's behaviour): sorts a copy, shuffles it, cuts it. */
export function splitByCell<T extends SplitItem>(items: readonly T[], options: SplitOptions): SplitAssignment<T> {
  const shuffled = seededShuffle([...items].sort(compareSplitItems), options.seed);
  const sizes = splitSizes(shuffled.length, options);
  const trainAndVal = shuffled.slice(0, sizes.training + sizes.validation);
  return {
    validation: trainAndVal.slice(0, sizes.validation),
    training: trainAndVal.slice(sizes.validation),
    testing: shuffled.slice(sizes.training + sizes.validation),
  };
}
