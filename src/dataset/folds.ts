// Patient-disjoint folds for cross-validation: every cell of one patient (slide) lies in one fold, so each fold's
// model is tested on patients it never saw, and the folds hold about the same number of cells.
import { patientIdOf } from './patients.js';
import { compareStrings, seededShuffle } from './split.js';

/** What the fold assignment needs to know about a cell. */
export interface FoldCell {
  /** The cell's file name (the patient id comes from it). */
  name: string;
  /** Unique per cell (its path relative to the input): a cell without a patient id is a group of its own. */
  relativePath: string;
}

export interface FoldAssignment {
  /** The fold (0-based) of each cell, in the order given. */
  foldOf: number[];
  /** Cells per fold. */
  cells: number[];
  /** Distinct patients per fold (cells without an id are not counted here). */
  patients: number[];
  /** Cells whose names carry no patient id: each was a group of its own (all of them: the folds split cells). */
  withoutId: number;
}

interface Group {
  key: string;
  members: number[];
}

/**
 * Deals whole patients into `folds` folds of about equal cell counts: the patients, sorted by id and shuffled with
 * `seed`, go one by one to the fold with the fewest cells so far; then single patients move from the fullest fold to
 * the emptiest while that narrows the gap. A cell without a patient id is a patient of its own.
 */
export function assignFolds(cells: readonly FoldCell[], folds: number, seed: number | string): FoldAssignment {
  const byKey = new Map<string, Group>();
  let withoutId = 0;
  cells.forEach((cell, index) => {
    const id = patientIdOf(cell.name);
    if (id === undefined) withoutId++;
    // "\0" cannot occur in a file name, so a cell's own key never collides with a patient id.
    const key = id ?? `\0${cell.relativePath}`;
    let group = byKey.get(key);
    if (!group) byKey.set(key, (group = { key, members: [] }));
    group.members.push(index);
  });
  const groups = seededShuffle(
    [...byKey.values()].sort((a, b) => compareStrings(a.key, b.key)),
    `malaria-folds:${seed}`,
  );
  const dealt: Group[][] = Array.from({ length: folds }, () => []);
  const sizes = new Array<number>(folds).fill(0);
  for (const group of groups) {
    const fold = sizes.indexOf(Math.min(...sizes));
    dealt[fold].push(group);
    sizes[fold] += group.members.length;
  }
  balance(dealt, sizes);

  const foldOf = new Array<number>(cells.length);
  dealt.forEach((foldGroups, fold) => {
    for (const group of foldGroups) for (const index of group.members) foldOf[index] = fold;
  });
  return {
    foldOf,
    cells: sizes,
    patients: dealt.map((foldGroups) => foldGroups.filter((group) => !group.key.startsWith('\0')).length),
    withoutId,
  };
}

/** Moves one group at a time from the fullest fold to the emptiest while that narrows their gap (deterministic). */
function balance(dealt: Group[][], sizes: number[]): void {
  for (let step = 0; step < 10_000; step++) {
    const full = sizes.indexOf(Math.max(...sizes));
    const empty = sizes.indexOf(Math.min(...sizes));
    const gap = sizes[full] - sizes[empty];
    // Moving a group of g cells leaves a gap of |gap - 2g|: take the group that makes it smallest, if it shrinks.
    let best = -1;
    let bestGap = gap;
    dealt[full].forEach((group, index) => {
      const after = Math.abs(gap - 2 * group.members.length);
      if (after < bestGap) {
        bestGap = after;
        best = index;
      }
    });
    if (best < 0) return;
    const [moved] = dealt[full].splice(best, 1);
    dealt[empty].push(moved);
    sizes[full] -= moved.members.length;
    sizes[empty] += moved.members.length;
  }
}
