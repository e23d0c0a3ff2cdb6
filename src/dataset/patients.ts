// Patient-level splitting: every cell cut from one patient's slides lands in a single split, so the
// test set measures how the model does on new patients rather than on neighbours of training cells.
import {
  compareStrings,
  seededShuffle,
  splitSizes,
  type SplitAssignment,
  type SplitItem,
  type SplitOptions,
} from './split.js';

/**
 * The patient (slide) id of an NIH cell file name: the part before "_IMG", without the thin-smear tag
 * and what follows it. "C100P61ThinF_IMG_..." -> "C100P61", "C59P20thinF_IMG_..." -> "C59P20",
 * "C1_thinF_IMG_..." -> "C1", and the two microscopes of one slide, "C47P8thinOriginalOlympusCX21_IMG_..."
 * and "C47P8thin_Original_Motic_IMG_...", both -> "C47P8". Undefined when the name carries no id.
 */
export function patientIdOf(fileName: string): string | undefined {
  const marker = fileName.indexOf('_IMG');
  if (marker <= 0) return undefined;
  const prefix = fileName.slice(0, marker);
  const id = prefix.replace(/_?thin.*$/i, '');
  return id === '' ? undefined : id;
}

export interface PatientSplit<T> extends SplitAssignment<T> {
  /** Distinct patient ids per split (files without an id are not counted here). */
  patients: { training: number; validation: number; testing: number };
  /** Files without a patient id: each was its own group. */
  withoutId: number;
}

interface Group<T> {
  key: string;
  items: T[];
}

/**
 * Walks the groups in order and takes each one that brings the running count closer to `target`
 * (a greedy subset sum: skipping an oversized group lets smaller ones after it fill the gap).
 */
function takeTowards<T>(groups: readonly Group<T>[], target: number): { taken: Group<T>[]; rest: Group<T>[] } {
  const taken: Group<T>[] = [];
  const rest: Group<T>[] = [];
  let takenCount = 0;
  for (const group of groups) {
    const size = group.items.length;
    // Take it when |count + size - target| < |count - target|; once count passes target nothing can
    // get closer, and for count < target that inequality is exactly this one (integers, no rounding).
    if (2 * takenCount + size < 2 * target) {
      taken.push(group);
      takenCount += size;
    } else {
      rest.push(group);
    }
  }
  refineTowards(taken, rest, target);
  return { taken, rest };
}

/** First group of each size, in list order (so choices stay deterministic). */
function firstOfEachSize<T>(groups: readonly Group<T>[]): Map<number, number> {
  const bySize = new Map<number, number>();
  groups.forEach((group, index) => {
    if (!bySize.has(group.items.length)) bySize.set(group.items.length, index);
  });
  return bySize;
}

/**
 * Improves a greedy pick in place: repeatedly applies the single add, removal or swap of one group
 * that brings the count closest to `target`. Only distinct group sizes are compared, so a pass costs
 * (distinct sizes)^2, a few thousand steps even for the full NIH set.
 */
function refineTowards<T>(taken: Group<T>[], rest: Group<T>[], target: number): void {
  for (let step = 0; step < 100; step++) {
    const gap = target - count(taken);
    if (gap === 0) return;
    const takenSizes = firstOfEachSize(taken);
    const restSizes = firstOfEachSize(rest);
    let best: { gap: number; remove?: number; add?: number } = { gap: Math.abs(gap) };
    const consider = (newGap: number, remove: number | undefined, add: number | undefined): void => {
      if (Math.abs(newGap) < best.gap) best = { gap: Math.abs(newGap), remove, add };
    };
    for (const [size, index] of restSizes) consider(gap - size, undefined, index);
    for (const [size, index] of takenSizes) consider(gap + size, index, undefined);
    for (const [takenSize, takenIndex] of takenSizes) {
      for (const [restSize, restIndex] of restSizes) consider(gap + takenSize - restSize, takenIndex, restIndex);
    }
    if (best.remove === undefined && best.add === undefined) return;
    const removed = best.remove === undefined ? undefined : taken.splice(best.remove, 1)[0];
    if (best.add !== undefined) taken.push(...rest.splice(best.add, 1));
    if (removed) rest.push(removed);
  }
}

/**
 * Splits whole patients: groups sorted by id then shuffled with the seed; testing takes groups until it
 * is as close as whole patients allow to the image count the per-image split would give it (greedy, then
 * improved by single moves and swaps), then
 * validation does the same from what is left (target: valSplit of the remaining images), and the rest
 * is training. Files without a patient id are groups of one.
 */
export function splitByPatient<T extends SplitItem>(items: readonly T[], options: SplitOptions): PatientSplit<T> {
  const byKey = new Map<string, T[]>();
  let withoutId = 0;
  for (const item of items) {
    const id = patientIdOf(item.name);
    if (id === undefined) withoutId++;
    // "\0" cannot occur in a file name, so singleton keys never collide with patient ids.
    const key = id ?? `\0${item.relativePath}`;
    let group = byKey.get(key);
    if (!group) byKey.set(key, (group = []));
    group.push(item);
  }
  const sortedGroups = [...byKey.entries()]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(
      ([key, groupItems]): Group<T> => ({
        key,
        items: [...groupItems].sort((a, b) => compareStrings(a.relativePath, b.relativePath)),
      }),
    );
  const shuffled = seededShuffle(sortedGroups, options.seed);

  const total = items.length;
  const testTarget = splitSizes(total, options).testing;
  const test = takeTowards(shuffled, testTarget);
  const remaining = total - count(test.taken);
  const valTarget = Math.floor(options.valSplit * remaining);
  const val = takeTowards(test.rest, valTarget);

  const flatten = (groups: Group<T>[]): T[] => groups.flatMap((group) => group.items);
  const patientCount = (groups: Group<T>[]): number => groups.filter((group) => !group.key.startsWith('\0')).length;
  return {
    training: flatten(val.rest),
    validation: flatten(val.taken),
    testing: flatten(test.taken),
    patients: {
      training: patientCount(val.rest),
      validation: patientCount(val.taken),
      testing: patientCount(test.taken),
    },
    withoutId,
  };
}

function count<T>(groups: readonly Group<T>[]): number {
  return groups.reduce((sum, group) => sum + group.items.length, 0);
}
