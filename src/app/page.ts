// index.html of the field app. The config is embedded as JSON so the page starts without another request.
import type { AppConfig } from './app-config.js';

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

/** JSON that cannot close the <script> element it sits in. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

export function indexHtml(config: AppConfig, entryModule: string): string {
  const positive = escapeHtml(config.classNames[config.positiveIndex]);
  const negative = escapeHtml(config.classNames[config.positiveIndex === 0 ? 1 : 0]);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Malaria cell screen</title>
<link rel="stylesheet" href="app.css">
<script type="application/json" id="config">${scriptJson(config)}</script>
<script src="vendor/tf.min.js"></script>
<script type="module" src="${escapeHtml(entryModule)}"></script>
</head>
<body data-state="loading">
<header>
  <h1>Malaria cell screen</h1>
  <p class="status"><span id="status">Loading the model…</span> <span id="offline" class="offline" hidden>works offline</span></p>
</header>
<main>
  <section id="drop" class="drop" aria-label="Add cell images">
    <p>Drop cell images or a folder of them here, or</p>
    <label class="button">Pick images<input id="pick-files" type="file" accept="image/*" multiple></label>
    <label class="button">Pick a folder<input id="pick-folder" type="file" webkitdirectory multiple></label>
    <button id="clear" type="button" class="quiet">New slide</button>
    <label class="option" title="Each cell's probability is the mean over its 8 flips and right-angle rotations: steadier, 8 times the work. Set it before adding cells (New slide to change it)."><input id="tta" type="checkbox"> Average 8 flips and rotations (slower)</label>
    <p id="progress" class="progress" aria-live="polite"></p>
  </section>
  <section class="summary" aria-label="Slide summary" aria-live="polite">
    <div class="figure"><span class="name">Cells</span><span id="cells" class="value">0</span></div>
    <div class="figure"><span class="name">${positive}</span><span id="parasitized" class="value">0</span></div>
    <div class="figure wide"><span class="name">Parasitemia</span><span id="parasitemia" class="value">–</span><span id="interval" class="detail">95% interval (Wilson)</span></div>
    <div class="figure"><span class="name">To check</span><span id="to-review" class="value">0</span><span id="review-rule" class="detail"></span></div>
    <div class="figure threshold">
      <label class="name" for="threshold">Threshold: ${positive} when P ≥</label>
      <span class="controls"><input id="threshold" type="number" min="0" max="1" step="any"><input id="threshold-range" type="range" min="0" max="1" step="0.01" aria-label="threshold"></span>
      <span class="detail"><span id="threshold-source"></span> <button id="threshold-reset" type="button" class="link">reset</button></span>
    </div>
  </section>
  <section class="toolbar" aria-label="View">
    <label>Show <select id="filter">
      <option value="all">all cells</option>
      <option value="positive">${positive}</option>
      <option value="negative">${negative}</option>
      <option value="review">to check</option>
      <option value="error">unreadable</option>
    </select></label>
    <label>Sort <select id="sort">
      <option value="order">as added</option>
      <option value="p-desc">P(${positive}), high first</option>
      <option value="p-asc">P(${positive}), low first</option>
      <option value="uncertain">closest to the threshold first</option>
      <option value="name">file name</option>
    </select></label>
    <span id="shown" class="shown"></span>
    <button id="export" type="button" disabled>Export CSV</button>
  </section>
  <section id="grid" class="grid" aria-label="Cells"></section>
</main>
<footer><span id="model-info"></span></footer>
</body>
</html>
`;
}
