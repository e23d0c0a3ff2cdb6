import { describe, expect, it } from 'vitest';
import { assignFolds, type FoldCell } from '../../src/dataset/folds.js';
import { patientIdOf } from '../../src/dataset/patients.js';

/** `cells[i]` cells for patient i, named as the NIH files are. */
function patients(cells: readonly number[]): FoldCell[] {
  return cells.flatMap((count, p) =>
    Array.from({ length: count }, (_, c) => {
      const name = `C${p}P${p}ThinF_IMG_2015_cell_${c}.png`;
      return { name, relativePath: `Parasitized/${name}` };
    }),
  );
}

const SIZES = [30, 1, 2, 7, 12, 3, 3, 9, 1, 1, 25, 4, 6, 8, 2, 2, 5, 11, 14, 1, 3, 6, 2, 9];

describe('assignFolds', () => {
  it('keeps every patient in one fold, folds within one patient of equal size', () => {
    const cells = patients(SIZES);
    const { foldOf, cells: sizes, patients: perFold, withoutId } = assignFolds(cells, 5, 42);
    const foldsOf = new Map<string, Set<number>>();
    cells.forEach((cell, i) => {
      const id = patientIdOf(cell.name) as string;
      foldsOf.set(id, (foldsOf.get(id) ?? new Set()).add(foldOf[i]));
    });
    expect([...foldsOf.values()].every((folds) => folds.size === 1)).toBe(true);
    expect(sizes.reduce((a, b) => a + b)).toBe(cells.length);
    for (let fold = 0; fold < 5; fold++) expect(foldOf.filter((f) => f === fold)).toHaveLength(sizes[fold]);
    // 176 cells: 35.2 per fold; the greedy deal plus moves keeps the gap under the largest patient (30).
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(3);
    expect(perFold.reduce((a, b) => a + b)).toBe(SIZES.length);
    expect(withoutId).toBe(0);
  });

  it('is fixed by the seed, and another seed deals the patients otherwise', () => {
    const cells = patients(SIZES);
    expect(assignFolds(cells, 5, 42).foldOf).toEqual(assignFolds([...cells], 5, 42).foldOf);
    expect(assignFolds(cells, 5, 7).foldOf).not.toEqual(assignFolds(cells, 5, 42).foldOf);
  });

  it('deals cells without a patient id one by one, and counts them', () => {
    const cells = Array.from({ length: 10 }, (_, i) => ({
      name: `cell_${i}.png`,
      relativePath: `Uninfected/cell_${i}.png`,
    }));
    const result = assignFolds(cells, 3, 1);
    expect(result.withoutId).toBe(10);
    expect(result.patients).toEqual([0, 0, 0]);
    expect([...result.cells].sort()).toEqual([3, 3, 4]);
  });
});
