// Out-of-fold cells of a two-fold cross-validation, worked by hand, shared by the tests of its figures
// (test/stats) and of their text (test/report).
import type { OutOfFoldCell } from '../../src/stats/crossval-figures.js';

const cell = (fold: number, patient: string, label: string, probability: number): OutOfFoldCell => ({
  file: `${label}/${patient}_${probability}.png`,
  patient,
  label,
  fold,
  probability,
});
export const P = 'Parasitized';
export const U = 'Uninfected';
// Fold 1 at 0.5: tp 2, fn 1, tn 1, fp 1; AUC 5/6. Fold 2 at 0.3 (its model's threshold): tp 1, tn 1, fp 1; AUC 1.
export const CELLS = [
  cell(1, 'A', P, 0.9),
  cell(1, 'A', U, 0.2),
  cell(1, 'B', P, 0.8),
  cell(1, 'B', U, 0.6),
  cell(1, 'C', P, 0.3),
  cell(2, 'D', P, 0.7),
  cell(2, 'D', U, 0.1),
  cell(2, 'E', U, 0.4),
];
export const MODELS = [
  { fold: 1, threshold: 0.5, temperature: 1.5 },
  { fold: 2, threshold: 0.3 },
];
