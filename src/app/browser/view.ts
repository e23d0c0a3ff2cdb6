// Draws the slide: one card per cell (thumbnail, label, probability, a "check" flag near the threshold) and the
// summary figures. Cards are made once and then only updated and reordered, so a threshold change stays fast.
import { formatPercent } from '../../report/parasitemia.js';
import type { SlideSummary } from '../../stats/parasitemia.js';
import type { AppConfig } from '../app-config.js';
import {
  isUncertain,
  labelOf,
  matchesFilter,
  positiveProbability,
  sortResults,
  type CellResult,
  type Decision,
  type Filter,
  type SortOrder,
} from './results.js';

export class CellGrid {
  private readonly cards = new Map<number, HTMLElement>();
  private readonly thumbnails: string[] = [];

  constructor(
    private readonly container: HTMLElement,
    private readonly config: AppConfig,
  ) {}

  add(result: CellResult, file: File): void {
    const card = document.createElement('figure');
    card.className = 'cell';
    card.dataset.name = result.name;
    card.dataset.state = 'pending';
    const image = document.createElement('img');
    image.alt = result.name;
    image.src = URL.createObjectURL(file);
    this.thumbnails.push(image.src);
    const caption = document.createElement('figcaption');
    caption.innerHTML =
      '<span class="label">…</span><span class="p"></span><span class="flag">check</span><span class="file"></span>';
    const fileName = caption.querySelector('.file') as HTMLElement;
    fileName.textContent = result.name;
    fileName.title = result.name;
    card.append(image, caption);
    this.cards.set(result.id, card);
    this.container.append(card);
  }

  /** Shows the result's label and probability at the current decision. */
  update(result: CellResult, decision: Decision): void {
    const card = this.cards.get(result.id);
    if (!card) return;
    const label = card.querySelector('.label') as HTMLElement;
    const probability = card.querySelector('.p') as HTMLElement;
    if (result.error !== undefined) {
      card.dataset.state = 'error';
      card.className = 'cell unreadable';
      label.textContent = 'unreadable';
      probability.textContent = '';
      card.title = result.error;
      return;
    }
    const p = positiveProbability(result, this.config);
    if (p === undefined) return;
    const name = labelOf(result, this.config, decision) as string;
    const positive = name === this.config.classNames[this.config.positiveIndex];
    const review = isUncertain(result, this.config, decision);
    card.dataset.state = 'done';
    card.dataset.label = name;
    card.dataset.p = String(p);
    card.dataset.review = String(review);
    card.className = `cell ${positive ? 'positive' : 'negative'}${review ? ' review' : ''}`;
    label.textContent = name;
    probability.textContent = `P = ${p.toFixed(3)}`;
    card.title = `${result.name}\nP(${this.config.classNames[this.config.positiveIndex]}) = ${p}`;
  }

  /** Puts the cards in `order` and hides those the filter leaves out; returns how many are shown. */
  arrange(results: readonly CellResult[], filter: Filter, order: SortOrder, decision: Decision): number {
    const fragment = document.createDocumentFragment();
    let shown = 0;
    for (const result of sortResults(results, order, this.config, decision)) {
      const card = this.cards.get(result.id);
      if (!card) continue;
      card.hidden = !matchesFilter(result, filter, this.config, decision);
      if (!card.hidden) shown++;
      fragment.append(card);
    }
    this.container.append(fragment);
    return shown;
  }

  clear(): void {
    for (const url of this.thumbnails.splice(0)) URL.revokeObjectURL(url);
    this.cards.clear();
    this.container.replaceChildren();
  }
}

export interface SummaryElements {
  cells: HTMLElement;
  parasitized: HTMLElement;
  parasitemia: HTMLElement;
  interval: HTMLElement;
  toReview: HTMLElement;
  reviewRule: HTMLElement;
}

export function showSummary(summary: SlideSummary, elements: SummaryElements): void {
  elements.cells.textContent = String(summary.cells);
  elements.parasitized.textContent = String(summary.parasitized);
  if (summary.parasitemia === null || summary.ci95 === null) {
    elements.parasitemia.textContent = '–';
    elements.interval.textContent = '95% interval (Wilson)';
  } else {
    elements.parasitemia.textContent = formatPercent(summary.parasitemia);
    elements.interval.textContent = `95% interval ${formatPercent(summary.ci95.lower)} to ${formatPercent(summary.ci95.upper)} (Wilson)`;
  }
  elements.toReview.textContent = String(summary.toReview);
  elements.reviewRule.textContent = `P within ${summary.reviewMargin} of the threshold`;
}
