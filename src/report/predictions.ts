// How `predict` shows its results: a plain table, or the --json array.
import { isFailed, type FileResult } from '../model/classify.js';

const round = (value: number): number => Number(value.toFixed(6));

/** The --json entries: exactly {file, label, probability} or {file, error}. */
export function predictionsJson(results: readonly FileResult[]): Record<string, unknown>[] {
  return results.map((r) =>
    isFailed(r)
      ? { file: r.file, error: r.error }
      : { file: r.file, label: r.label, probability: round(r.probability) },
  );
}

/** A plain table: file, label, probability; failed files show their error instead. */
export function formatPredictionTable(results: readonly FileResult[]): string {
  const fileWidth = Math.max(4, ...results.map((r) => r.file.length));
  const labelWidth = Math.max(5, ...results.map((r) => (isFailed(r) ? 0 : r.label.length)));
  const lines = [`${'file'.padEnd(fileWidth)}  ${'label'.padEnd(labelWidth)}  probability`];
  for (const r of results) {
    lines.push(
      isFailed(r)
        ? `${r.file.padEnd(fileWidth)}  error: ${r.error}`
        : `${r.file.padEnd(fileWidth)}  ${r.label.padEnd(labelWidth)}  ${r.probability.toFixed(4)}`,
    );
  }
  return lines.join('\n');
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** "18 images classified (9 Parasitized, 9 Uninfected); 2 failed; 3 non-image files skipped" */
export function formatClassifiedCounts(
  results: readonly FileResult[],
  classNames: readonly string[],
  skipped: number,
): string {
  const failed = results.filter(isFailed).length;
  const counts = classNames.map((name) => `${results.filter((r) => !isFailed(r) && r.label === name).length} ${name}`);
  const skippedNote = skipped ? `; ${plural(skipped, 'non-image file')} skipped` : '';
  return `${plural(results.length - failed, 'image')} classified (${counts.join(', ')}); ${failed} failed${skippedNote}`;
}
