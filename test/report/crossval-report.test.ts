import { describe, expect, it } from 'vitest';
import { formatCrossval, formatFoldFigures } from '../../src/report/crossval-report.js';
import { crossvalFigures } from '../../src/stats/crossval-figures.js';
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
