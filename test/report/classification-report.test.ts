import { describe, expect, it } from 'vitest';
import {
  formatClassificationReport,
  formatConfusionMatrix,
  formatFixed,
} from '../../src/report/classification-report.js';
import { metricsFromConfusion } from '../../src/stats/metrics.js';

// Expected strings are written out from sklearn's format strings:
//   header '{:>{width}s} ' + ' {:>9}' * 4, rows '{:>{width}s} ' + ' {:>9.{digits}f}' * 3 + ' {:>9}\n',
//   width = max(len(longest label), len('weighted avg') = 12, digits).

describe('formatFixed (Python float formatting)', () => {
  it('rounds exact binary ties to even like Python, unlike Number#toFixed', () => {
    expect(formatFixed(0.125, 2)).toBe('0.12'); // '%.2f' % 0.125
    expect(formatFixed(0.375, 2)).toBe('0.38');
    expect(formatFixed(0.625, 2)).toBe('0.62');
    expect(formatFixed(0.0625, 3)).toBe('0.062');
    expect(formatFixed(0.25, 1)).toBe('0.2');
  });

  it('rounds the exact binary value, so 0.675 (stored just above) goes up', () => {
    expect(formatFixed(0.675, 2)).toBe('0.68');
    expect(formatFixed(2 / 3, 2)).toBe('0.67');
    expect(formatFixed(0.995, 2)).toBe('0.99'); // stored as 0.99499999999999999556
  });

  it('formats whole numbers, zero and carries', () => {
    expect(formatFixed(1, 2)).toBe('1.00');
    expect(formatFixed(0, 2)).toBe('0.00');
    expect(formatFixed(0.999, 2)).toBe('1.00');
    expect(formatFixed(2786, 0)).toBe('2786');
  });
});

describe('formatClassificationReport', () => {
  it('reproduces sklearn layout for the hand-computed 3-class case (accuracy 0.625 prints 0.62)', () => {
    // true A: 3 A, 1 B; true B: 1 A, 2 B; true C: 1 A (C never predicted -> precision 0).
    const metrics = metricsFromConfusion(
      [
        [3, 1, 0],
        [1, 2, 0],
        [1, 0, 0],
      ],
      ['A', 'B', 'C'],
    );
    const expected =
      '              precision    recall  f1-score   support\n' +
      '\n' +
      '           A       0.60      0.75      0.67         4\n' +
      '           B       0.67      0.67      0.67         3\n' +
      '           C       0.00      0.00      0.00         1\n' +
      '\n' +
      '    accuracy                           0.62         8\n' +
      '   macro avg       0.42      0.47      0.44         8\n' +
      'weighted avg       0.55      0.62      0.58         8\n';
    expect(formatClassificationReport(metrics)).toBe(expected);
  });

  it('matches the tutorial-style two-class report', () => {
    // 2650 of 2786 parasitized found, 2644 of 2726 uninfected.
    const metrics = metricsFromConfusion(
      [
        [2650, 136],
        [82, 2644],
      ],
      ['Parasitized', 'Uninfected'],
    );
    // Parasitized: p = 2650/2732 = 0.970, r = 2650/2786 = 0.951, f1 = 5300/5518 = 0.960
    // Uninfected:  p = 2644/2780 = 0.951, r = 2644/2726 = 0.970, f1 = 5288/5506 = 0.960; accuracy 5294/5512 = 0.960
    const expected =
      '              precision    recall  f1-score   support\n' +
      '\n' +
      ' Parasitized       0.97      0.95      0.96      2786\n' +
      '  Uninfected       0.95      0.97      0.96      2726\n' +
      '\n' +
      '    accuracy                           0.96      5512\n' +
      '   macro avg       0.96      0.96      0.96      5512\n' +
      'weighted avg       0.96      0.96      0.96      5512\n';
    expect(formatClassificationReport(metrics)).toBe(expected);
  });

  it('widens the name column for a long label and honours digits', () => {
    // X: 1 of 1 found but 8 predicted (p 1/8, f1 2/9); Y: 7 images never predicted.
    const metrics = metricsFromConfusion(
      [
        [1, 0],
        [7, 0],
      ],
      ['Parasitized cells (thin smear)', 'Y'],
    );
    const expected =
      '                                precision    recall  f1-score   support\n' +
      '\n' +
      'Parasitized cells (thin smear)      0.125     1.000     0.222         1\n' +
      '                             Y      0.000     0.000     0.000         7\n' +
      '\n' +
      '                      accuracy                          0.125         8\n' +
      '                     macro avg      0.062     0.500     0.111         8\n' +
      '                  weighted avg      0.016     0.125     0.028         8\n';
    expect(formatClassificationReport(metrics, 3)).toBe(expected);
  });

  it('prints zeros (not NaN) for an empty evaluation', () => {
    const report = formatClassificationReport(
      metricsFromConfusion(
        [
          [0, 0],
          [0, 0],
        ],
        ['P', 'U'],
      ),
    );
    expect(report).not.toMatch(/nan/i);
    expect(report).toContain('    accuracy                           0.00         0\n');
  });
});

describe('formatConfusionMatrix', () => {
  it('lays out true classes as rows and predicted classes as columns', () => {
    const expected =
      'true \\ predicted  Parasitized  Uninfected\n' +
      'Parasitized              2650         136\n' +
      'Uninfected                 82        2644\n';
    expect(
      formatConfusionMatrix(
        ['Parasitized', 'Uninfected'],
        [
          [2650, 136],
          [82, 2644],
        ],
      ),
    ).toBe(expected);
  });

  it('widens a column for counts longer than the label', () => {
    expect(
      formatConfusionMatrix(
        ['a', 'b'],
        [
          [123456, 0],
          [1, 2],
        ],
      ),
    ).toBe('true \\ predicted       a  b\n' + 'a                 123456  0\n' + 'b                      1  2\n');
  });

  it('rejects a matrix that does not match the labels', () => {
    expect(() => formatConfusionMatrix(['a', 'b'], [[1, 2]])).toThrow(RangeError);
  });
});
