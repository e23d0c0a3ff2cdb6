// The slide summary in words: the lines `predict --summary` prints and the percentages the field app shows. The app
// ships this module's compiled JS to the browser (app/browser-modules.ts), so it imports nothing a browser cannot load.
import type { SlideSummary } from '../stats/parasitemia.js';

/** A fraction as a percentage with one decimal, e.g. 0.4351 -> "43.5%". */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

/** "43.5% (95% CI 36.8% to 50.4%, Wilson)", or "n/a (no cells)". */
export function formatParasitemia(summary: SlideSummary): string {
  if (summary.parasitemia === null || summary.ci95 === null) return 'n/a (no cells)';
  return `${formatPercent(summary.parasitemia)} (95% CI ${formatPercent(summary.ci95.lower)} to ${formatPercent(summary.ci95.upper)}, Wilson)`;
}

/** The slide summary as the lines `predict --summary` prints; `positiveLabel` is the model's positive class. */
export function formatSlideSummary(summary: SlideSummary, positiveLabel: string): string[] {
  return [
    `slide summary: ${summary.cells} cells, ${summary.parasitized} ${positiveLabel}`,
    `parasitemia: ${formatParasitemia(summary)}`,
    `threshold: P(${positiveLabel}) >= ${summary.threshold}`,
    `near the threshold (within ${summary.reviewMargin}): ${summary.toReview} cells to check by eye`,
  ];
}
