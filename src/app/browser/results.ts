// The slide's cells as data: the label each gets at the current threshold, filtering, sorting and the CSV export.
import { csvLine } from '../../io/csv.js';
import { decide } from '../../stats/decide.js';
import { needsReview, summariseSlide, type SlideSummary } from '../../stats/parasitemia.js';
import type { AppConfig } from '../app-config.js';

export interface CellResult {
  /** Arrival order: the "as added" sort. */
  id: number;
  name: string;
  /** Class probabilities, in the model's class order; absent until classified or when the image is unreadable. */
  probabilities?: number[];
  /** Why the image could not be classified. */
  error?: string;
}

/** The decision the user can change in the page. */
export interface Decision {
  threshold: number;
  reviewMargin: number;
}

export type Filter = 'all' | 'positive' | 'negative' | 'review' | 'error';
export type SortOrder = 'order' | 'p-desc' | 'p-asc' | 'uncertain' | 'name';

export function positiveProbability(result: CellResult, config: AppConfig): number | undefined {
  return result.probabilities?.[config.positiveIndex];
}

/** The two-class decision: the positive class when P(positive) >= threshold, else the other class. */
export function labelOf(result: CellResult, config: AppConfig, decision: Decision): string | undefined {
  const p = positiveProbability(result, config);
  if (p === undefined) return undefined;
  const negativeIndex = config.positiveIndex === 0 ? 1 : 0;
  return config.classNames[decide(p, decision.threshold) ? config.positiveIndex : negativeIndex];
}

export function isUncertain(result: CellResult, config: AppConfig, decision: Decision): boolean {
  const p = positiveProbability(result, config);
  return p !== undefined && needsReview(p, decision.threshold, decision.reviewMargin);
}

export function matchesFilter(result: CellResult, filter: Filter, config: AppConfig, decision: Decision): boolean {
  const p = positiveProbability(result, config);
  switch (filter) {
    case 'all':
      return true;
    case 'error':
      return result.error !== undefined;
    case 'review':
      return isUncertain(result, config, decision);
    case 'positive':
      return p !== undefined && decide(p, decision.threshold);
    case 'negative':
      return p !== undefined && !decide(p, decision.threshold);
  }
}

const byName = new Intl.Collator(undefined, { numeric: true }).compare;

/** A sorted copy; unclassified cells go last in the probability orders. */
export function sortResults(
  results: readonly CellResult[],
  order: SortOrder,
  config: AppConfig,
  decision: Decision,
): CellResult[] {
  const p = (r: CellResult) => positiveProbability(r, config);
  const keyed = (key: (r: CellResult) => number) => (a: CellResult, b: CellResult) => {
    const [ka, kb] = [p(a) === undefined ? Infinity : key(a), p(b) === undefined ? Infinity : key(b)];
    return ka === kb ? a.id - b.id : ka - kb;
  };
  const sorted = [...results];
  switch (order) {
    case 'order':
      return sorted.sort((a, b) => a.id - b.id);
    case 'name':
      return sorted.sort((a, b) => byName(a.name, b.name) || a.id - b.id);
    case 'p-desc':
      return sorted.sort(keyed((r) => -(p(r) as number)));
    case 'p-asc':
      return sorted.sort(keyed((r) => p(r) as number));
    case 'uncertain':
      return sorted.sort(keyed((r) => Math.abs((p(r) as number) - decision.threshold)));
  }
}

/** The slide summary over the classified cells (unreadable images are not cells). */
export function slideSummary(results: readonly CellResult[], config: AppConfig, decision: Decision): SlideSummary {
  const probabilities = results.map((r) => positiveProbability(r, config)).filter((p): p is number => p !== undefined);
  return summariseSlide(probabilities, decision.threshold, decision.reviewMargin);
}

/** One row per image, in the order added: file, label, each class's probability, check, threshold, error. */
export function resultsCsv(results: readonly CellResult[], config: AppConfig, decision: Decision): string {
  const header = ['file', 'label', ...config.classNames.map((c) => `p_${c}`), 'check', 'threshold', 'error'];
  const rows = [...results]
    .sort((a, b) => a.id - b.id)
    .map((r) => [
      r.name,
      labelOf(r, config, decision) ?? '',
      ...config.classNames.map((_, c) => (r.probabilities ? String(r.probabilities[c]) : '')),
      isUncertain(r, config, decision) ? 'yes' : '',
      decision.threshold,
      r.error ?? '',
    ]);
  return [header, ...rows].map(csvLine).join('');
}
