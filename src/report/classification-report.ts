// Text reports: sklearn's classification_report layout, character for character, and a confusion table.
import type { ClassificationMetrics } from '../stats/metrics.js';

const HEADERS = ['precision', 'recall', 'f1-score', 'support'];
/** sklearn sizes the name column so its longest fixed heading fits. */
const LONGEST_LAST_LINE_HEADING = 'weighted avg';
const COLUMN_WIDTH = 9;

/** Length in code points, as Python's len() counts them (and str.format pads by). */
function textLength(text: string): number {
  return [...text].length;
}

function padLeft(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - textLength(text))) + text;
}

/**
 * Python's '{:.Nf}' for a double: the exact binary value rounded to N decimals, ties to even.
 * Number#toFixed rounds exact ties up (0.125 -> "0.13" where Python prints "0.12"), so round exactly here.
 */
export function formatFixed(value: number, digits: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  const negative = value < 0 || Object.is(value, -0);
  const { mantissa, exponent } = decompose(Math.abs(value)); // |value| = mantissa * 2^exponent exactly
  let scaled = mantissa * 10n ** BigInt(digits);
  if (exponent >= 0) {
    scaled <<= BigInt(exponent);
  } else {
    const shift = BigInt(-exponent);
    const quotient = scaled >> shift;
    const remainder = scaled - (quotient << shift);
    const half = 1n << (shift - 1n);
    scaled = remainder > half || (remainder === half && (quotient & 1n) === 1n) ? quotient + 1n : quotient;
  }
  const text = scaled.toString().padStart(digits + 1, '0');
  const whole = text.slice(0, text.length - digits);
  const fraction = text.slice(text.length - digits);
  return `${negative ? '-' : ''}${whole}${digits > 0 ? `.${fraction}` : ''}`;
}

function decompose(value: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  return biasedExponent === 0
    ? { mantissa: fraction, exponent: -1074 } // subnormal
    : { mantissa: fraction | (1n << 52n), exponent: biasedExponent - 1075 };
}

/**
 * The report sklearn.metrics.classification_report prints (including its trailing newline):
 * name column width = max(longest label, len("weighted avg"), digits), then 9-wide columns separated by a space.
 * The tutorial passes every class, so the micro-average row is always labelled "accuracy".
 */
export function formatClassificationReport(metrics: ClassificationMetrics, digits = 2): string {
  const width = Math.max(...metrics.labels.map(textLength), LONGEST_LAST_LINE_HEADING.length, digits);
  const number = (value: number): ` ${string}` => ` ${padLeft(formatFixed(value, digits), COLUMN_WIDTH)}`;
  const count = (value: number): ` ${string}` => ` ${padLeft(String(value), COLUMN_WIDTH)}`;
  const row = (name: string, precision: number, recall: number, f1: number, support: number): string =>
    `${padLeft(name, width)} ${number(precision)}${number(recall)}${number(f1)}${count(support)}\n`;

  let report = `${' '.repeat(width)} ${HEADERS.map((header) => ` ${padLeft(header, COLUMN_WIDTH)}`).join('')}\n\n`;
  for (const scores of metrics.perClass) {
    report += row(scores.label, scores.precision, scores.recall, scores.f1, scores.support);
  }
  report += '\n';
  const blank = ` ${' '.repeat(COLUMN_WIDTH)}`;
  report += `${padLeft('accuracy', width)} ${blank}${blank}${number(metrics.accuracy)}${count(metrics.total)}\n`;
  const { macro, weighted } = metrics;
  report += row('macro avg', macro.precision, macro.recall, macro.f1, macro.support);
  report += row('weighted avg', weighted.precision, weighted.recall, weighted.f1, weighted.support);
  return report;
}

const CORNER = 'true \\ predicted';

/** Confusion matrix as a table: one row per true class, one column per predicted class (trailing newline). */
export function formatConfusionMatrix(labels: string[], confusion: number[][]): string {
  if (confusion.length !== labels.length || confusion.some((row) => row.length !== labels.length)) {
    throw new RangeError(`confusion matrix must be ${labels.length} x ${labels.length} for ${labels.length} labels`);
  }
  const nameWidth = Math.max(textLength(CORNER), ...labels.map(textLength));
  const columnWidths = labels.map((label, j) =>
    Math.max(textLength(label), ...confusion.map((row) => String(row[j]).length)),
  );
  const line = (first: string, cells: string[]): string =>
    `${first}${' '.repeat(nameWidth - textLength(first))}${cells.map((cell, j) => `  ${padLeft(cell, columnWidths[j])}`).join('')}\n`;
  return line(CORNER, labels) + labels.map((label, i) => line(label, confusion[i].map(String))).join('');
}
