import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import {
  classThresholds,
  findLabelSuspects,
  suspectsPerPatient,
  type OutOfFoldRow,
} from '../../src/stats/label-issues.js';

const CLASSES = { positive: 'Parasitized', negative: 'Uninfected' };

/** Rows from [file, label initial, P(Parasitized)]; the patient is the file's first letter. */
function rows(cells: [string, 'P' | 'U', number][]): OutOfFoldRow[] {
  return cells.map(([file, label, probability], i) => ({
    file,
    sha256: `hash-${file}`,
    patient: file[0],
    label: label === 'P' ? 'Parasitized' : 'Uninfected',
    fold: i % 3,
    probability,
  }));
}

// A model under-confident about Parasitized: its mean P(Parasitized) over the Parasitized cells is 0.4, and its
// mean P(Uninfected) over the Uninfected cells is 0.76 (both by hand below).
const underConfident = rows([
  ['a1', 'P', 0.8],
  ['a2', 'P', 0.5],
  ['b1', 'P', 0.3],
  ['b2', 'P', 0.2],
  ['a3', 'P', 0.2],
  ['c1', 'U', 0.0],
  ['c2', 'U', 0.1],
  ['c3', 'U', 0.05],
  ['d1', 'U', 0.45],
  ['b3', 'U', 0.6],
]);

describe('classThresholds', () => {
  it('is each class’s mean self-confidence', () => {
    const t = classThresholds(underConfident, CLASSES);
    // (0.8 + 0.5 + 0.3 + 0.2 + 0.2) / 5 and (1 + 0.9 + 0.95 + 0.55 + 0.4) / 5.
    expect(t.positive).toBeCloseTo(0.4, 12);
    expect(t.negative).toBeCloseTo(0.76, 12);
  });

  it('refuses a class without cells', () => {
    const onlyParasitized = rows([['a1', 'P', 0.9]]);
    expect(() => classThresholds(onlyParasitized, CLASSES)).toThrow(UserError);
    expect(() => classThresholds(onlyParasitized, CLASSES)).toThrow(/no cell is labelled Uninfected/);
  });
});

describe('findLabelSuspects', () => {
  it('flags the cells whose other class reaches its threshold, which a 0.5 rule gets wrong both ways', () => {
    const { thresholds, suspects } = findLabelSuspects(underConfident, CLASSES);
    expect(thresholds.positive).toBeCloseTo(0.4, 12);
    // b2 and a3: P(Uninfected) 0.8 >= 0.76. b3: P(Parasitized) 0.6 >= 0.4. d1: P(Parasitized) 0.45 >= 0.4, which
    // a 0.5 rule calls Uninfected, as labelled. b1: P(Uninfected) 0.7 < 0.76, not a suspect, though a 0.5 rule
    // calls it a miss.
    expect(suspects.map((s) => s.file)).toEqual(['a3', 'b2', 'b3', 'd1']);
    expect(suspects.map((s) => s.suggested)).toEqual(['Uninfected', 'Uninfected', 'Parasitized', 'Parasitized']);
    const naive = underConfident.filter((row) => row.probability >= 0.5 !== (row.label === 'Parasitized'));
    expect(naive.map((row) => row.file).sort()).toEqual(['a3', 'b1', 'b2', 'b3']);
    // Margin = P(suggested) - P(label): 0.8 - 0.2, 0.8 - 0.2, 0.6 - 0.4, 0.45 - 0.55 (below zero: d1 is suspect
    // only because the model rarely gives Parasitized cells much).
    const margins = suspects.map((s) => s.margin);
    [0.6, 0.6, 0.2, -0.1].forEach((expected, i) => expect(margins[i]).toBeCloseTo(expected, 12));
    expect(suspects[3]).toMatchObject({
      file: 'd1',
      sha256: 'hash-d1',
      patient: 'd',
      label: 'Uninfected',
      suggested: 'Parasitized',
      probability: 0.45,
      fold: 2,
    });
  });

  it('ranks by margin, highest first, and breaks ties by file name whatever the input order', () => {
    const reversed = [...underConfident].reverse();
    expect(findLabelSuspects(reversed, CLASSES).suspects.map((s) => s.file)).toEqual(['a3', 'b2', 'b3', 'd1']);
  });

  it('when a cell reaches both thresholds, counts it as the more probable class (the confident joint’s argmax)', () => {
    // t(Parasitized) = 0.5; t(Uninfected) = (0.4 + 0.5 + 0.1 + 0.1) / 4 = 0.275.
    const low = rows([
      ['p1', 'P', 0.5],
      ['p2', 'P', 0.5],
      ['u1', 'U', 0.6],
      ['u2', 'U', 0.5],
      ['u3', 'U', 0.9],
      ['u4', 'U', 0.9],
    ]);
    const { thresholds, suspects } = findLabelSuspects(low, CLASSES);
    expect(thresholds.negative).toBeCloseTo(0.275, 12);
    // u1 reaches both (0.6 >= 0.5, 0.4 >= 0.275) and Parasitized is the larger: suspect. u2 and p1 reach both
    // at 0.5 each: no class wins, not suspects.
    expect(suspects.map((s) => [s.file, s.suggested])).toEqual([
      ['u3', 'Parasitized'],
      ['u4', 'Parasitized'],
      ['u1', 'Parasitized'],
    ]);
  });

  it('counts a cell exactly at its class’s mean as reaching it', () => {
    // Seven Uninfected cells at P(Uninfected) 0.7 average to 0.7000000000000001 in floating point; p1, at
    // P(Uninfected) 0.7, reaches that mean all the same.
    const even = rows([
      ['p1', 'P', 0.3],
      ['p2', 'P', 0.9],
      ['p3', 'P', 0.9],
      ...Array.from({ length: 7 }, (_, i): [string, 'U', number] => [`u${i}`, 'U', 0.3]),
    ]);
    expect(findLabelSuspects(even, CLASSES).suspects.map((s) => s.file)).toEqual(['p1']);
  });

  it('refuses a label of neither class and a probability outside [0, 1], in one line each', () => {
    const stray: OutOfFoldRow = { ...underConfident[0], label: 'Thumbs' };
    expect(() => findLabelSuspects([...underConfident, stray], CLASSES)).toThrow(
      'a1 is labelled Thumbs, not Parasitized or Uninfected: label review takes two-class predictions',
    );
    const bad: OutOfFoldRow = { ...underConfident[0], probability: Number.NaN };
    expect(() => findLabelSuspects([bad, ...underConfident], CLASSES)).toThrow(UserError);
  });
});

describe('suspectsPerPatient', () => {
  it('counts cells and suspects per patient, most suspects first, then by id', () => {
    const { suspects } = findLabelSuspects(underConfident, CLASSES);
    expect(suspectsPerPatient(underConfident, suspects)).toEqual([
      { patient: 'b', cells: 3, suspects: 2 },
      { patient: 'a', cells: 3, suspects: 1 },
      { patient: 'd', cells: 1, suspects: 1 },
      { patient: 'c', cells: 3, suspects: 0 },
    ]);
  });
});
