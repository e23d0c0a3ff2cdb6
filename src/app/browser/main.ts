// The page's entry module: loads the model, takes images from drops and pickers, classifies them in batches and
// keeps the grid, the slide summary and the CSV export in step with the threshold.
import type { AppConfig } from '../app-config.js';
import { BATCH_SIZE, cellInput, predict } from './classify.js';
import { fromDrop, fromFileList, type CellFile, type Collected } from './collect-files.js';
import { resultsCsv, slideSummary, type CellResult, type Decision, type Filter, type SortOrder } from './results.js';
import { tf, type LayersModel } from './tf-global.js';
import { CellGrid, showSummary } from './view.js';

const element = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html lacks #${id}`);
  return found as T;
};

const config = JSON.parse(element('config').textContent ?? '') as AppConfig;
const ui = {
  status: element('status'),
  offline: element('offline'),
  progress: element('progress'),
  drop: element('drop'),
  pickFiles: element<HTMLInputElement>('pick-files'),
  pickFolder: element<HTMLInputElement>('pick-folder'),
  clear: element<HTMLButtonElement>('clear'),
  tta: element<HTMLInputElement>('tta'),
  threshold: element<HTMLInputElement>('threshold'),
  thresholdRange: element<HTMLInputElement>('threshold-range'),
  thresholdSource: element('threshold-source'),
  thresholdReset: element<HTMLButtonElement>('threshold-reset'),
  filter: element<HTMLSelectElement>('filter'),
  sort: element<HTMLSelectElement>('sort'),
  shown: element('shown'),
  exportCsv: element<HTMLButtonElement>('export'),
  modelInfo: element('model-info'),
  summary: {
    cells: element('cells'),
    parasitized: element('parasitized'),
    parasitemia: element('parasitemia'),
    interval: element('interval'),
    toReview: element('to-review'),
    reviewRule: element('review-rule'),
  },
};

const grid = new CellGrid(element('grid'), config);
const decision: Decision = { threshold: config.threshold, reviewMargin: config.reviewMargin };
let results: CellResult[] = [];
let queue: { result: CellResult; file: File }[] = [];
let skippedFiles = 0;
let model: LayersModel | undefined;
let working = false;

/** Redraws after a change; `changed` limits the card updates to those cells when the decision did not change. */
function refresh(changed: readonly CellResult[] = results): void {
  for (const result of changed) grid.update(result, decision);
  const shown = grid.arrange(results, ui.filter.value as Filter, ui.sort.value as SortOrder, decision);
  ui.shown.textContent = results.length ? `${shown} of ${results.length} shown` : '';
  showSummary(slideSummary(results, config, decision), ui.summary);
  ui.exportCsv.disabled = results.length === 0 || queue.length > 0;
  // One slide's cells are all classified the same way.
  ui.tta.disabled = results.length > 0;
}

const reason = (err: unknown): string => (err instanceof Error && err.message ? err.message : String(err));

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;

function showProgress(): void {
  const done = results.length - queue.length;
  const unreadable = results.filter((r) => r.error !== undefined).length;
  const parts = [
    queue.length
      ? `Classifying: ${done} of ${plural(results.length, 'image')}`
      : `${plural(results.length, 'image')} classified`,
  ];
  if (unreadable) parts.push(`${unreadable} unreadable`);
  if (skippedFiles) parts.push(`${plural(skippedFiles, 'other file')} skipped`);
  ui.progress.textContent = results.length || skippedFiles ? parts.join('; ') : '';
}

function addFiles(collected: Collected): void {
  skippedFiles += collected.skipped.length;
  collected.images.forEach(({ file, name }: CellFile) => {
    const result: CellResult = { id: results.length, name };
    results.push(result);
    grid.add(result, file);
    queue.push({ result, file });
  });
  showProgress();
  refresh([]);
  void classifyQueued();
}

/** Classifies queued images a batch at a time, repainting between batches. One run at a time. */
async function classifyQueued(): Promise<void> {
  if (working || !model) return;
  working = true;
  document.body.dataset.state = 'working';
  try {
    while (queue.length > 0) {
      const batch = queue.slice(0, BATCH_SIZE);
      const readable: { result: CellResult; input: Float32Array }[] = [];
      for (const { result, file } of batch) {
        try {
          readable.push({
            result,
            input: await cellInput(file, config.preprocessing, config.maxInputPixels),
          });
        } catch (err) {
          result.error = err instanceof Error && err.message ? err.message : 'not an image this browser can decode';
        }
      }
      if (readable.length > 0) {
        const probabilities = await predict(
          model,
          readable.map((r) => r.input),
          config.preprocessing.imageSize,
          { temperature: config.temperature, tta: ui.tta.checked },
        );
        readable.forEach(({ result }, i) => (result.probabilities = Array.from(probabilities[i])));
      }
      // A "New slide" during the await emptied the queue; its results are gone, so drop this batch too.
      if (queue[0] !== batch[0]) continue;
      queue = queue.slice(batch.length);
      showProgress();
      refresh(batch.map((b) => b.result));
      await new Promise((resolve) => setTimeout(resolve));
    }
  } catch (err) {
    ui.status.textContent = `Classification failed: ${reason(err)}`;
  } finally {
    working = false;
    document.body.dataset.state = 'ready';
  }
}

function setThreshold(value: number): void {
  if (!Number.isFinite(value) || value < 0 || value > 1) return;
  decision.threshold = value;
  ui.threshold.value = String(value);
  ui.thresholdRange.value = String(value);
  refresh();
}

function download(name: string, text: string): void {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

function wireControls(): void {
  ui.pickFiles.addEventListener('change', () => {
    addFiles(fromFileList(ui.pickFiles.files));
    ui.pickFiles.value = '';
  });
  ui.pickFolder.addEventListener('change', () => {
    addFiles(fromFileList(ui.pickFolder.files));
    ui.pickFolder.value = '';
  });
  // Drops anywhere count, so a missed drop zone never makes the browser open the image instead.
  document.addEventListener('dragover', (event) => {
    event.preventDefault();
    ui.drop.classList.add('over');
  });
  // relatedTarget is null only when the drag leaves the window, not when it crosses from one element to another.
  document.addEventListener('dragleave', (event) => {
    if (!event.relatedTarget) ui.drop.classList.remove('over');
  });
  document.addEventListener('drop', (event) => {
    event.preventDefault();
    ui.drop.classList.remove('over');
    // Reading a dropped folder can fail (a file moved or unreadable, a folder the browser may not list): say so.
    if (!event.dataTransfer) return;
    fromDrop(event.dataTransfer).then(addFiles, (err: unknown) => {
      ui.status.textContent = `Could not read what was dropped: ${reason(err)}. Drop it again, or pick the files or folder.`;
    });
  });
  ui.clear.addEventListener('click', () => {
    queue = [];
    results = [];
    skippedFiles = 0;
    grid.clear();
    showProgress();
    refresh();
  });
  ui.threshold.addEventListener('input', () => setThreshold(ui.threshold.valueAsNumber));
  ui.thresholdRange.addEventListener('input', () => setThreshold(ui.thresholdRange.valueAsNumber));
  ui.thresholdReset.addEventListener('click', () => setThreshold(config.threshold));
  ui.filter.addEventListener('change', () => refresh([]));
  ui.sort.addEventListener('change', () => refresh([]));
  ui.exportCsv.addEventListener('click', () => {
    const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
    download(`slide-${stamp}.csv`, resultsCsv(results, config, decision));
  });
}

/** The service worker caches every file of the app, so the page loads and classifies with the network off. */
async function enableOffline(): Promise<void> {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  try {
    await navigator.serviceWorker.register('sw.js');
    await navigator.serviceWorker.ready;
    ui.offline.hidden = false;
  } catch (err) {
    console.warn('the app will not work offline:', err);
  }
}

async function start(): Promise<void> {
  const source = config.thresholdSource === 'model' ? 'saved with the model' : 'default';
  ui.thresholdSource.textContent = `${source}: ${config.threshold}`;
  setThreshold(config.threshold);
  wireControls();
  void enableOffline();
  try {
    // ?backend=cpu forces the pure-JS backend (slow, but the same arithmetic on every device).
    const backend = new URLSearchParams(location.search).get('backend');
    if (backend && !(await tf.setBackend(backend))) throw new Error(`the ${backend} backend is not available here`);
    await tf.ready();
    model = await tf.loadLayersModel(config.modelUrl);
  } catch (err) {
    ui.status.textContent = `Could not load the model: ${reason(err)}`;
    document.body.dataset.state = 'failed';
    return;
  }
  const positive = config.classNames[config.positiveIndex];
  ui.status.textContent = `Ready: each cell is ${positive} when P(${positive}) ≥ the threshold.`;
  ui.modelInfo.textContent = `Model saved ${config.modelCreated || 'at an unknown time'}; ${config.classNames.join(' / ')}; input ${config.preprocessing.imageSize}×${config.preprocessing.imageSize} px. TensorFlow.js ${tf.version.tfjs} (${tf.getBackend()}). App ${config.version}.`;
  document.body.dataset.state = 'ready';
  await classifyQueued();
}

void start();
