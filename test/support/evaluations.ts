// Hand-made two-class predictions shared by the tests of the evaluation figures (test/stats) and of their text
// (test/report).
import type { LabelledProbabilities } from '../../src/stats/labelled-probabilities.js';

export const CLASSES = { classNames: ['Parasitized', 'Uninfected'], positiveClass: 'Parasitized' };

/** Two-class predictions from P(Parasitized) per image and the true class indices (0 = Parasitized). */
export function predictions(pParasitized: number[], labels: number[]): LabelledProbabilities {
  const probabilities = new Float32Array(pParasitized.length * 2);
  pParasitized.forEach((p, i) => {
    probabilities[2 * i] = p;
    probabilities[2 * i + 1] = 1 - p;
  });
  return { probabilities, labels: Int32Array.from(labels), classes: 2 };
}

// 5 parasitized cells scored 0.9 0.8 0.6 0.35 0.2; 4 uninfected scored 0.7 0.3 0.1 0.05.
export const validation = predictions([0.9, 0.8, 0.6, 0.35, 0.2, 0.7, 0.3, 0.1, 0.05], [0, 0, 0, 0, 0, 1, 1, 1, 1]);

// 12 patients of 10 cells, both classes in each, scored with noise so the model errs now and then.
export const patients = Array.from({ length: 120 }, (_, i) => `C${Math.floor(i / 10)}P${Math.floor(i / 10)}`);
export const noisyLabels = Array.from({ length: 120 }, (_, i) => (i % 10 < 5 ? 0 : 1));
export const noisyScores = noisyLabels.map((label, i) =>
  Math.min(1, Math.max(0, (label === 0 ? 0.75 : 0.25) + 0.5 * Math.sin(i * 12.9898) ** 3)),
);
export const noisyCells = predictions(noisyScores, noisyLabels);

// Healthy (label 0) and Sick (label 1); the second column is P(Sick). 3 Sick cells, 4 Healthy ones.
const pSick = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.05];
export const sickCells: LabelledProbabilities = {
  probabilities: Float32Array.from(pSick.flatMap((p) => [1 - p, p])),
  labels: Int32Array.of(1, 1, 1, 0, 0, 0, 0),
  classes: 2,
};
export const SICK = { classNames: ['Healthy', 'Sick'], positiveClass: 'Sick' };
