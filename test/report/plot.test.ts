import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import type { TrainingHistory } from '../../src/model/history.js';
import {
  renderReliabilityPlot,
  renderRocPlot,
  reliabilityPlotSvg,
  renderTrainingPlot,
  rocPlotSvg,
  trainingPlotSvg,
} from '../../src/report/plot.js';
import { calibrationOf } from '../../src/stats/calibration.js';
import { escapeXml, niceTicks } from '../../src/report/svg.js';
import { readPngText } from '../../src/io/png-text.js';
import { expectUserError } from '../support/errors.js';
import { DEAD_PID, makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('malaria-plot-');
});
afterAll(async () => removeDir(dir));

function history(epochs: number): TrainingHistory {
  const h: TrainingHistory = { loss: [], accuracy: [], val_loss: [], val_accuracy: [], lr: [] };
  for (let i = 0; i < epochs; i++) {
    h.loss.push(1.5 * Math.exp(-i / 6) + 0.1);
    h.val_loss.push(1.4 * Math.exp(-i / 7) + 0.2);
    h.accuracy.push(0.97 - 0.45 * Math.exp(-i / 5));
    h.val_accuracy.push(0.95 - 0.4 * Math.exp(-i / 5));
    h.lr.push(0.1);
  }
  return h;
}

/** Counts pixels close (per channel) to each wanted colour; antialiasing leaves the line centres exact. */
async function colourCounts(file: string, wanted: string[]): Promise<{ distinct: number; near: number[] }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const targets = wanted.map((hex) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)));
  const near = targets.map(() => 0);
  const seen = new Set<number>();
  for (let i = 0; i < data.length; i += info.channels) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    seen.add((r << 16) | (g << 8) | b);
    targets.forEach((t, k) => {
      if (Math.abs(r - t[0]) <= 12 && Math.abs(g - t[1]) <= 12 && Math.abs(b - t[2]) <= 12) near[k]++;
    });
  }
  return { distinct: seen.size, near };
}

describe('renderTrainingPlot', () => {
  it('writes an 800x600 PNG with the four coloured lines', async () => {
    const file = path.join(dir, 'plot.png');
    await renderTrainingPlot(history(20), file);
    const meta = await sharp(file).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBe(800);
    expect(meta.height).toBe(600);
    // ggplot colours of train_loss, val_loss, train_acc, val_acc; each must cover a visible number of pixels.
    const { distinct, near } = await colourCounts(file, ['#E24A33', '#348ABD', '#988ED5', '#777777']);
    expect(distinct).toBeGreaterThan(20);
    for (const count of near) expect(count).toBeGreaterThan(200);
  });

  it('honours the requested size, leaves no temp files and creates the folder', async () => {
    const file = path.join(dir, 'nested', 'big.png');
    await renderTrainingPlot(history(3), file, { width: 1000, height: 700 });
    const meta = await sharp(file).metadata();
    expect([meta.width, meta.height]).toEqual([1000, 700]);
    expect(await readdir(path.dirname(file))).toEqual(['big.png']);
  });

  it('draws a single epoch and a history with NaN without breaking the SVG', async () => {
    const h = history(1);
    h.val_loss = [Number.NaN];
    const svg = trainingPlotSvg(h);
    expect(svg).not.toMatch(/NaN/);
    const file = path.join(dir, 'one.png');
    await renderTrainingPlot(h, file);
    const { near } = await colourCounts(file, ['#E24A33']);
    expect(near[0]).toBeGreaterThan(20); // the single train_loss point is marked
  });

  it('carries the title, axis labels and legend names', () => {
    const svg = trainingPlotSvg(history(5));
    for (const label of [
      'Training Loss and Accuracy on Dataset',
      'Epoch #',
      'Loss/Accuracy',
      'train_loss',
      'val_loss',
      'train_acc',
      'val_acc',
    ]) {
      expect(svg).toContain(`>${label}</text>`);
    }
  });

  it('rejects silly sizes with a UserError', () => {
    expect(() => trainingPlotSvg(history(2), { width: 10 })).toThrow(UserError);
  });
});

describe('renderRocPlot', () => {
  const curve = [
    { fpr: 0, tpr: 0, threshold: Number.POSITIVE_INFINITY },
    { fpr: 0, tpr: 0.6, threshold: 0.9 },
    { fpr: 0.1, tpr: 0.9, threshold: 0.5 },
    { fpr: 0.4, tpr: 1, threshold: 0.2 },
    { fpr: 1, tpr: 1, threshold: 0.05 },
  ];

  it('writes a PNG with the curve, the diagonal and the operating point', async () => {
    const file = path.join(dir, 'roc.png');
    await renderRocPlot(curve, { auc: 0.95, operatingPoint: curve[2] }, file);
    const meta = await sharp(file).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 800, 600]);
    const { near } = await colourCounts(file, ['#E24A33', '#348ABD', '#777777']);
    expect(near[0]).toBeGreaterThan(200); // curve
    expect(near[1]).toBeGreaterThan(100); // operating-point marker (and its legend dot)
    expect(near[2]).toBeGreaterThan(200); // dashed diagonal
  });

  it('puts the AUC and operating point in the legend and escapes text for XML', () => {
    const svg = rocPlotSvg(curve, { auc: 0.95, operatingPoint: curve[2], title: 'ROC <Parasitized & co>' });
    expect(svg).toContain('ROC (AUC = 0.9500)');
    expect(svg).toContain('threshold 0.5000: sensitivity 0.900, specificity 0.900');
    expect(svg).toContain('ROC &lt;Parasitized &amp; co&gt;');
    expect(rocPlotSvg([], { auc: null })).toContain('ROC (AUC undefined)');
  });
});

describe('svg helpers', () => {
  it('escapes the five XML special characters', () => {
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  });

  it('chooses round tick steps', () => {
    expect(niceTicks(0, 1, 6).values).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 2.5, 6).values).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    // 49 / 9 = 5.4 per gap; the next nice step at or above it is 10.
    expect(niceTicks(1, 50, 10, true).values).toEqual([10, 20, 30, 40, 50]);
    expect(niceTicks(1, 3, 10, true).values).toEqual([1, 2, 3]);
  });
});

describe('renderReliabilityPlot', () => {
  it('draws one bar per filled bin, in proportion to its accuracy, with the ECE in the title', async () => {
    // Bins 13 (confidence 0.9, all right) and 8 (0.55, all wrong): one full-height bar, one empty one.
    const calibration = calibrationOf(
      Float32Array.from([0.9, 0.1, 0.9, 0.1, 0.55, 0.45]),
      Int32Array.from([0, 0, 1]),
      2,
    );
    const svg = reliabilityPlotSvg(calibration, 'Reliability diagram, testing');
    expect(svg).toContain(`Reliability diagram, testing (ECE ${calibration.ece.toFixed(4)}, 3 images)`);
    const heights = [...svg.matchAll(/<rect [^>]*height="([\d.]+)" fill="#348ABD"/g)].map((m) => Number(m[1]));
    expect(heights).toHaveLength(2);
    expect(heights[0]).toBe(0);
    expect(heights[1]).toBeGreaterThan(300);
    const file = path.join(dir, 'reliability.png');
    await renderReliabilityPlot(calibration, 'Reliability', file);
    const { near } = await colourCounts(file, ['#348ABD']);
    expect(near[0]).toBeGreaterThan(5_000);
    expect(reliabilityPlotSvg(calibrationOf(new Float32Array(0), new Int32Array(0), 2), 'empty')).toContain(
      'no images',
    );
  });
});

describe('the PNG files the plots write', () => {
  const software = async (file: string) => readPngText(await readFile(file)).get('Software');

  it('carry the Software text chunk that names this tool', async () => {
    const files = ['marked-training.png', 'marked-roc.png', 'marked-reliability.png'].map((name) =>
      path.join(dir, name),
    );
    await renderTrainingPlot(history(2), files[0]);
    await renderRocPlot([], { auc: null }, files[1]);
    await renderReliabilityPlot(calibrationOf(new Float32Array(0), new Int32Array(0), 2), 'empty', files[2]);
    for (const file of files) {
      expect(await software(file), file).toBe('malaria');
      expect((await sharp(file).metadata()).comments, file).toEqual([{ keyword: 'Software', text: 'malaria' }]);
    }
  });

  it("replace their own earlier PNG; another file only with force, and only then sweep the plot's leftovers", async () => {
    const folder = path.join(dir, 'replace');
    const file = path.join(folder, 'plot.png');
    await renderTrainingPlot(history(2), file);
    await renderTrainingPlot(history(5), { path: file, label: '--plot plot.png' });
    expect(await software(file)).toBe('malaria');

    await writeFile(file, 'my notes, not a plot');
    // A plot killed while being written, by a process long gone.
    const leftover = `.plot.png.malaria-tmp-${DEAD_PID}-0badcafe`;
    await writeFile(path.join(folder, leftover), 'half a PNG');
    await expectUserError(
      renderTrainingPlot(history(2), { path: file, label: '--plot plot.png' }),
      /^--plot plot\.png is not a file this tool wrote \(it is not a PNG\); nothing was changed/,
    );
    expect(await readFile(file, 'utf8')).toBe('my notes, not a plot');
    expect((await readdir(folder)).sort()).toEqual([leftover, 'plot.png']);

    await renderTrainingPlot(history(2), { path: file, label: '--plot plot.png', force: true });
    expect(await software(file)).toBe('malaria');
    expect(await readdir(folder)).toEqual(['plot.png']);
  });
});
