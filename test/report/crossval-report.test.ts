import { describe, expect, it } from 'vitest';
import { formatComparison, formatCrossval, formatFoldFigures } from '../../src/report/crossval-report.js';
import { compareCrossvals, crossvalFigures } from '../../src/stats/crossval-figures.js';
import { CELLS, MODELS, P, U } from '../support/crossval-cells.js';

describe('formatCrossval', () => {
  const figures = crossvalFigures(CELLS, MODELS, { positive: P, negative: U });

  it('prints the pooled row of the table', () => {
    expect(formatCrossval(figures)).toMatch(/^all\s+8\s+5\s+62\.5%\s+75\.0%\s+50\.0%/m);
  });

  it("prints a finished fold's figures on one line", () => {
    expect(formatFoldFigures(figures.folds[0])).toMatch(
      /^5 held-out cells of 3 patients: balanced accuracy 58\.3%, sensitivity 66\.7%, specificity 50\.0%, AUC 0\.8333, ECE \d\.\d{4}$/,
    );
  });
});

describe('formatComparison', () => {
  // b finds patient C's parasitized cell (0.3 -> 0.6): fold 1 from 58.33% to 75.00%, fold 2 unchanged.
  const b = CELLS.map((cell) => (cell.patient === 'C' ? { ...cell, probability: 0.6 } : cell));
  const comparison = compareCrossvals(
    { cells: CELLS, models: MODELS },
    { cells: b, models: MODELS },
    { positive: P, negative: U },
  );
  const text = formatComparison(comparison, { a: 'runs/today', b: 'runs/cheaper' });

  it('names the runs and gives each fold’s balanced accuracy of both, and b - a in points', () => {
    expect(text).toMatch(/^a = runs\/today\nb = runs\/cheaper\n/);
    expect(text).toMatch(/^1\s+5\s+3\s+58\.33%\s+75\.00%\s+\+16\.67$/m);
    expect(text).toMatch(/^2\s+3\s+2\s+75\.00%\s+75\.00%\s+\+0\.00$/m);
    expect(text).toMatch(/^all\s+8\s+5\s+62\.50%\s+75\.00%\s+\+12\.50$/m);
  });

  it('ends with the pooled difference and its paired interval over the patients', () => {
    expect(text).toMatch(
      /pooled b - a, paired bootstrap over 5 patients \(the same draw for both, 2000 replicates\): balanced accuracy \+12\.50 points \(95% interval [+-]\d+\.\d\d to \+\d+\.\d\d\), AUC [+-]0\.\d{4}/,
    );
  });
});
