// What `malaria build-dataset` prints: one line per thing found or set aside, then a table of images
// per split and class with the class balance (and patients, when grouped by patient).
import path from 'node:path';
import type { SplitName } from '../config.js';
import { SPLIT_NAMES, type BuildDatasetResult } from '../dataset/build.js';

const formatCount = (n: number): string => n.toLocaleString('en-US');

const plural = (n: number, one: string, many = `${one}s`): string => `${formatCount(n)} ${n === 1 ? one : many}`;

/** Up to three examples, then "...": enough to recognise Thumbs.db without flooding the terminal. */
function examples(paths: readonly string[]): string {
  const shown = paths.slice(0, 3).join(', ');
  return paths.length > 3 ? `${shown}, ...` : shown;
}

/** One line per kind of file that was skipped, dropped or set aside (nothing for kinds that did not occur). */
function noteLines(result: BuildDatasetResult, usable: number): string[] {
  const { classNames } = result;
  const lines = [
    `found ${plural(usable, 'usable image')} in ${classNames.length} classes (${classNames.join(', ')}) under ${result.input}`,
  ];
  if (result.nonImages.length > 0) {
    lines.push(`skipped ${plural(result.nonImages.length, 'non-image file')} (${examples(result.nonImages)})`);
  }
  if (result.unlabelled.length > 0) {
    const where = `lying directly in the input folder, outside any class folder (${examples(result.unlabelled)})`;
    lines.push(`skipped ${plural(result.unlabelled.length, 'image')} ${where}`);
  }
  if (result.duplicates.length > 0) {
    const crossClass = result.duplicates.filter((duplicate) => duplicate.crossClass).length;
    const conflict =
      crossClass > 0 ? `, ${formatCount(crossClass)} of them filed under a different class than the copy kept` : '';
    lines.push(
      `dropped ${plural(result.duplicates.length, 'duplicate image')} (identical bytes; kept the first copy by path)${conflict}`,
    );
  }
  if (result.rejected.length > 0) {
    const where = `reasons in ${result.rejectedPath}; not copied`;
    lines.push(`set aside ${plural(result.rejected.length, 'file')} that do not decode as images (${where})`);
  }
  if (result.notFollowed.length > 0) {
    const what = plural(result.notFollowed.length, 'folder link or special file', 'folder links or special files');
    lines.push(`did not follow ${what} (${examples(result.notFollowed)})`);
  }
  if (result.finishedSwaps.length > 0) {
    lines.push(
      `finished moving into place the complete split of ${plural(result.finishedSwaps.length, 'run')} interrupted while doing so`,
    );
  }
  if (result.removedLeftovers.length > 0) {
    lines.push(`removed ${plural(result.removedLeftovers.length, 'temporary folder')} left by an interrupted run`);
  }
  if (result.patients) {
    const withoutId = result.withoutPatientId
      ? `; ${plural(result.withoutPatientId, 'file')} without a patient id in the name, each kept as a group of one`
      : '';
    lines.push(`grouped by patient: no patient has images in two splits${withoutId}`);
  }
  return lines;
}

/** The table: one row per split and a total row; columns per class, total, class balance, patients. */
function tableLines(result: BuildDatasetResult): string[] {
  const { classNames, counts, patients } = result;
  const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
  const balance = (perClass: Record<string, number>, total: number): string =>
    classNames.map((name) => (total > 0 ? `${((100 * perClass[name]) / total).toFixed(1)}%` : '-')).join(' / ');
  const row = (label: string, perClass: Record<string, number>, patientCount: number | undefined): string[] => {
    const total = sum(classNames.map((name) => perClass[name]));
    const cells = [
      label,
      ...classNames.map((name) => formatCount(perClass[name])),
      formatCount(total),
      balance(perClass, total),
    ];
    return patientCount === undefined ? cells : [...cells, formatCount(patientCount)];
  };
  const totals = Object.fromEntries(
    classNames.map((name) => [name, sum(SPLIT_NAMES.map((split) => counts[split][name]))]),
  );
  const rows = [
    ['split', ...classNames, 'total', 'balance', ...(patients ? ['patients'] : [])],
    ...SPLIT_NAMES.map((split: SplitName) => row(split, counts[split], patients?.[split])),
    row('total', totals, patients ? sum(SPLIT_NAMES.map((split) => patients[split])) : undefined),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((cells) => cells[i].length)));
  return rows.map((cells) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '),
  );
}

/** The summary table (counts per split and class, balance, patients) and one line per thing set aside. */
export function formatBuildSummary(result: BuildDatasetResult): string[] {
  const { classNames, counts } = result;
  const usable = SPLIT_NAMES.reduce(
    (sum, split) => sum + classNames.reduce((n, name) => n + counts[split][name], 0),
    0,
  );
  const lines = [...noteLines(result, usable), '', ...tableLines(result), ''];
  for (const split of SPLIT_NAMES) {
    if (classNames.every((name) => counts[split][name] === 0)) {
      const more = result.patients ? 'more images (or patients)' : 'more images';
      lines.push(`warning: ${split} is empty; use ${more} or other --train-split/--val-split values`);
    }
  }
  const replaced = result.replaced.length > 0 ? ` (replaced the previous ${result.replaced.join(', ')})` : '';
  const folders = SPLIT_NAMES.map((split) => path.join(result.output, split)).join(', ');
  lines.push(`wrote ${folders} and ${result.manifestPath}${replaced}`);
  return lines;
}
