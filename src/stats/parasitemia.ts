// The slide-level figure a microscopist reports: the share of the slide's cells of the model's positive class
// (parasitized), with its 95% Wilson interval. `predict --summary` and the field app (which ships this module's
// compiled JS to the browser) both use it, so it must import nothing a browser cannot load.
import { decide } from './decide.js';
import { wilsonInterval, type Interval } from './metrics.js';

/** Cells whose P(positive) lies closer than this to the threshold are marked for a human to check. */
export const DEFAULT_REVIEW_MARGIN = 0.1;

export interface SlideSummary {
  /** Cells classified. */
  cells: number;
  /** Cells with P(positive) >= threshold. */
  parasitized: number;
  /** parasitized / cells; null when there are no cells. */
  parasitemia: number | null;
  /** Wilson 95% interval of the parasitemia; null when there are no cells. */
  ci95: Interval | null;
  threshold: number;
  /** Cells with |P(positive) - threshold| < reviewMargin: the ones worth a second look. */
  toReview: number;
  reviewMargin: number;
}

function checkThreshold(threshold: number): void {
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 1) {
    throw new RangeError(`threshold ${threshold} is not a probability between 0 and 1`);
  }
}

export function needsReview(pPositive: number, threshold: number, reviewMargin = DEFAULT_REVIEW_MARGIN): boolean {
  return Math.abs(pPositive - threshold) < reviewMargin;
}

/** Counts and parasitemia of one slide from each cell's probability of the positive class. */
export function summariseSlide(
  pPositive: ArrayLike<number>,
  threshold: number,
  reviewMargin = DEFAULT_REVIEW_MARGIN,
): SlideSummary {
  checkThreshold(threshold);
  let parasitized = 0;
  let toReview = 0;
  for (let i = 0; i < pPositive.length; i++) {
    const p = pPositive[i];
    // A NaN would silently count as negative and bias the parasitemia down.
    if (!Number.isFinite(p))
      throw new RangeError(`cell ${i} has a non-finite probability (${p}); the model probably diverged`);
    if (decide(p, threshold)) parasitized++;
    if (needsReview(p, threshold, reviewMargin)) toReview++;
  }
  const cells = pPositive.length;
  return {
    cells,
    parasitized,
    parasitemia: cells === 0 ? null : parasitized / cells,
    ci95: wilsonInterval(parasitized, cells),
    threshold,
    toReview,
    reviewMargin,
  };
}
