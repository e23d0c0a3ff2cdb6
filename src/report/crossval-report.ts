// The text crossval prints: a finished fold's line and the closing table (stats/crossval-figures.ts makes the
// figures).
import type { CrossvalComparison, CrossvalFigures, Figures, FoldFigures } from '../stats/crossval-figures.js';
import type { Interval } from '../stats/metrics.js';

const percent = (value: number | null): string => (value === null ? 'n/a' : `${(100 * value).toFixed(1)}%`);
const decimal = (value: number | null): string => (value === null ? 'n/a' : value.toFixed(4));
const interval = (ci: Interval | null, format: (v: number) => string): string =>
  ci === null ? '' : ` (${format(ci.lower)}-${format(ci.upper)})`;

/** "2,408 held-out cells of 39 patients: balanced accuracy 95.1%, sensitivity ..., AUC 0.9876, ECE 0.0123". */
export function formatFoldFigures(fold: FoldFigures): string {
  return `${fold.cells.toLocaleString('en-US')} held-out cells of ${fold.patients} patients: balanced accuracy ${percent(fold.balancedAccuracy)}, sensitivity ${percent(fold.sensitivity)}, specificity ${percent(fold.specificity)}, AUC ${decimal(fold.auc)}, ECE ${decimal(fold.ece)}`;
}

/** The short report crossval prints: one line per fold, mean ± sd, the pooled figures with their intervals. */
export function formatCrossval(figures: CrossvalFigures): string {
  const header = `fold  cells  patients  balanced acc.  sensitivity  specificity     AUC      ECE`;
  const row = (name: string, f: { cells?: number; patients?: number } & Figures): string =>
    [
      name.padEnd(4),
      String(f.cells ?? '').padStart(6),
      String(f.patients ?? '').padStart(9),
      percent(f.balancedAccuracy).padStart(14),
      percent(f.sensitivity).padStart(12),
      percent(f.specificity).padStart(12),
      decimal(f.auc).padStart(8),
      decimal(f.ece).padStart(8),
    ].join(' ');
  const plusMinus = (key: keyof Figures, format: (v: number | null) => string) =>
    `${format(figures.mean[key])} ± ${format(figures.sd[key])}`;
  const { pooled } = figures;
  const p = (v: number) => `${(100 * v).toFixed(1)}%`;
  return [
    `out-of-fold results (positive class ${figures.positiveClass}; each fold's model on the patients it never saw):`,
    header,
    ...figures.folds.map((fold) => row(String(fold.fold), fold)),
    row('all', pooled),
    `mean ± sd over ${figures.folds.length} folds: balanced accuracy ${plusMinus('balancedAccuracy', percent)}, sensitivity ${plusMinus('sensitivity', percent)}, specificity ${plusMinus('specificity', percent)}, AUC ${plusMinus('auc', decimal)}, ECE ${plusMinus('ece', decimal)}`,
    `pooled, 95% intervals (${pooled.ci95Method}): balanced accuracy ${percent(pooled.balancedAccuracy)}${interval(pooled.ci95.balancedAccuracy, p)}, sensitivity ${percent(pooled.sensitivity)}${interval(pooled.ci95.sensitivity, p)}, specificity ${percent(pooled.specificity)}${interval(pooled.ci95.specificity, p)}, AUC ${decimal(pooled.auc)}${interval(pooled.ci95.auc, (v) => v.toFixed(3))}`,
  ].join('\n');
}

/** Two recipes' cross-validations side by side, fold by fold, and the pooled difference b - a with its interval. */
export function formatComparison(comparison: CrossvalComparison, names: { a: string; b: string }): string {
  const { a, b, difference } = comparison;
  const percent2 = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(2)}%`);
  const points = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(2)}`;
  const ci = (i: Interval | null, format: (v: number) => string) =>
    i === null ? '' : ` (95% interval ${format(i.lower)} to ${format(i.upper)})`;
  const thousandths = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(4)}`;
  const rows = a.folds.map((fold, i) => {
    const other = b.folds[i];
    const delta =
      fold.balancedAccuracy === null || other.balancedAccuracy === null
        ? 'n/a'
        : points(other.balancedAccuracy - fold.balancedAccuracy);
    return `${String(fold.fold).padEnd(4)} ${String(fold.cells).padStart(6)} ${String(fold.patients).padStart(9)} ${percent2(fold.balancedAccuracy).padStart(8)} ${percent2(other.balancedAccuracy).padStart(8)} ${delta.padStart(8)}`;
  });
  return [
    `a = ${names.a}`,
    `b = ${names.b}`,
    `balanced accuracy on each fold's held-out patients (${comparison.folds.length === 1 ? '1 fold' : `${comparison.folds.length} folds`} both finished):`,
    `fold  cells  patients        a        b   b - a (points)`,
    ...rows,
    `${'all'.padEnd(4)} ${String(a.pooled.cells).padStart(6)} ${String(a.pooled.patients).padStart(9)} ${percent2(a.pooled.balancedAccuracy).padStart(8)} ${percent2(b.pooled.balancedAccuracy).padStart(8)} ${points(difference.balancedAccuracy.difference).padStart(8)}`,
    `pooled b - a, paired bootstrap over ${difference.clusters} patients (the same draw for both, ${difference.replicates} replicates): ` +
      `balanced accuracy ${points(difference.balancedAccuracy.difference)} points${ci(difference.balancedAccuracy.interval, points)}, ` +
      `AUC ${thousandths(difference.auc.difference)}${ci(difference.auc.interval, thousandths)}`,
  ].join('\n');
}
