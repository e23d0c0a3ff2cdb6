// The field app end to end in Debian's chromium (driven by playwright-core): written from a tiny model, served on
// 127.0.0.1, fed sample cells through the file picker. The page must give the labels and probabilities Node gives
// for the same images (same preprocessing code, same weights), keep the summary in step with the threshold,
// export what it shows, and work again with the server gone.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { serveApp, type AppServer } from '../../src/app/serve.js';
import { writeApp } from '../../src/app/write-app.js';
import { parseCsv } from '../../src/io/csv.js';
import { decodeRgb } from '../../src/input/decode.js';
import { REFERENCE_CELL_COLOUR, type StainReference } from '../../src/input/stain.js';
import { applyTemperature } from '../../src/model/temperature.js';
import { batchProbabilities } from '../../src/model/inference.js';
import { loadModel } from '../../src/model/io.js';
import { decide } from '../../src/stats/decide.js';
import { needsReview, summariseSlide } from '../../src/stats/parasitemia.js';
import { formatPercent } from '../../src/report/parasitemia.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { cellImages } from '../support/images.js';
import { launchChromium } from '../support/browser.js';
import { IMAGE_SIZE, nodeInputs, predictRows, writeTinyModel } from '../support/models.js';

/** Float32 arithmetic in a different order (browser kernels vs Node's) may differ in the last bits, no more. */
const TOLERANCE = 1e-5;
const SAVED_THRESHOLD = 0.4;
/** Saved with the model: the page must apply it as Node does. */
const SAVED_TEMPERATURE = 1.6;
const SIZE = IMAGE_SIZE;

interface Card {
  name: string;
  state: string;
  label?: string;
  p?: number;
  review?: boolean;
  hidden: boolean;
}

async function readCards(page: Page): Promise<Card[]> {
  return page.$$eval('#grid .cell', (cards) =>
    cards.map((card) => {
      const data = (card as HTMLElement).dataset;
      return {
        name: data.name as string,
        state: data.state as string,
        label: data.label,
        p: data.p === undefined ? undefined : Number(data.p),
        review: data.review === undefined ? undefined : data.review === 'true',
        hidden: (card as HTMLElement).hidden,
      };
    }),
  );
}

/** Picks `files` with the page's file input and waits until every one is classified (or unreadable). */
async function classify(page: Page, files: readonly string[]): Promise<Card[]> {
  const before = await page.locator('#grid .cell').count();
  await page.setInputFiles('#pick-files', [...files]);
  await page.waitForFunction(
    (total) =>
      document.querySelectorAll('#grid .cell:not([data-state="pending"])').length === total &&
      document.body.dataset.state === 'ready',
    before + files.length,
  );
  return readCards(page);
}

async function openApp(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state === 'ready', undefined, { timeout: 60_000 });
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

describe('the field app in chromium', () => {
  let work: string;
  let files: string[];
  /** Node's P(Parasitized) for each file, by file name, at the model's temperature, and the network's own. */
  const nodeP = new Map<string, number>();
  const rawP = new Map<string, number>();
  let server: AppServer;
  let context: BrowserContext;
  let page: Page;
  const requests: string[] = [];

  beforeAll(async () => {
    await selectBackend('cpu');
    work = await makeTempDir('malaria-app-browser-');
    files = await cellImages(path.join(work, 'cells'), 6);
    const model = await writeTinyModel(path.join(work, 'model'), files, {
      threshold: SAVED_THRESHOLD,
      temperature: SAVED_TEMPERATURE,
    });
    predictRows(model, await nodeInputs(files, SIZE), files.length, SIZE).forEach((row, i) => {
      rawP.set(path.basename(files[i]), row[0]);
      nodeP.set(path.basename(files[i]), applyTemperature(Float32Array.from(row), 2, SAVED_TEMPERATURE)[0]);
    });
    model.dispose();
    const app = await writeApp({ modelDir: path.join(work, 'model'), outDir: path.join(work, 'app') });
    server = await serveApp(app.outDir, 0);
    context = await launchChromium(path.join(work, 'profile'));
    page = context.pages()[0] ?? (await context.newPage());
    // Context-wide, so the service worker's own fetches are seen too.
    context.on('request', (request) => requests.push(request.url()));
    await openApp(page, server.url);
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    await removeDir(work);
  });

  it('classifies the cells as Node does: same labels, probabilities within float tolerance', async () => {
    expect(await page.inputValue('#threshold')).toBe(String(SAVED_THRESHOLD));
    const cards = await classify(page, files);
    expect(cards.map((c) => c.name)).toEqual(files.map((f) => path.basename(f)));
    let maxDifference = 0;
    for (const card of cards) {
      const expected = nodeP.get(card.name) as number;
      expect(card.state, card.name).toBe('done');
      maxDifference = Math.max(maxDifference, Math.abs((card.p as number) - expected));
      expect(card.label, card.name).toBe(decide(expected, SAVED_THRESHOLD) ? 'Parasitized' : 'Uninfected');
      expect(card.review, card.name).toBe(needsReview(expected, SAVED_THRESHOLD));
    }
    console.info(
      `browser vs Node, ${cards.length} images: max |P difference| = ${maxDifference.toExponential(2)} (${await page.evaluate(() => (window as unknown as { tf: typeof tf }).tf.getBackend())})`,
    );
    expect(maxDifference).toBeLessThanOrEqual(TOLERANCE);
    // The temperature moved the probabilities far beyond the tolerance, so the page does apply it.
    expect(
      Math.max(...cards.map((card) => Math.abs((rawP.get(card.name) as number) - (nodeP.get(card.name) as number)))),
    ).toBeGreaterThan(100 * TOLERANCE);
    // Both labels occur, so the comparison covers both sides of the threshold.
    expect(new Set(cards.map((c) => c.label)).size).toBe(2);
  });

  it('the tolerance is tight enough to catch a different resize (bilinear instead of nearest)', async () => {
    const model = await tf.loadLayersModel(`${server.url}model/model.json`).catch(() => undefined);
    // tf.loadLayersModel over http needs fetch; Node 20 has it, and the served model is the app's own copy.
    expect(model).toBeDefined();
    const bilinear = await Promise.all(
      files.map(async (file) => {
        const rgb = await decodeRgb(file);
        return tf.tidy(() => {
          const image = tf.tensor3d(rgb.data, [rgb.height, rgb.width, 3], 'int32').toFloat().div(255);
          return tf.image.resizeBilinear(image as tf.Tensor3D, [SIZE, SIZE], false, true).dataSync() as Float32Array;
        });
      }),
    );
    const x = new Float32Array(files.length * SIZE * SIZE * 3);
    bilinear.forEach((input, i) => x.set(input, i * input.length));
    const rows = predictRows(model as tf.LayersModel, x, files.length, SIZE);
    model?.dispose();
    const moved = rows.filter(
      (row, i) => Math.abs(row[0] - (rawP.get(path.basename(files[i])) as number)) > 100 * TOLERANCE,
    );
    expect(moved.length).toBeGreaterThan(files.length / 2);
  });

  it('shows the slide summary summariseSlide computes, at the saved threshold', async () => {
    const expected = summariseSlide([...nodeP.values()], SAVED_THRESHOLD);
    expect(await text(page, '#cells')).toBe(String(files.length));
    expect(await text(page, '#parasitized')).toBe(String(expected.parasitized));
    expect(await text(page, '#parasitemia')).toBe(formatPercent(expected.parasitemia as number));
    expect(await text(page, '#interval')).toBe(
      `95% interval ${formatPercent(expected.ci95?.lower as number)} to ${formatPercent(expected.ci95?.upper as number)} (Wilson)`,
    );
    expect(await text(page, '#to-review')).toBe(String(expected.toReview));
    expect(await text(page, '#threshold-source')).toContain(`saved with the model: ${SAVED_THRESHOLD}`);
  });

  it('relabels the cells and updates the summary when the threshold moves, and resets to the saved one', async () => {
    const sorted = [...nodeP.values()].sort((a, b) => a - b);
    // Halfway between the two middle probabilities: cells on both sides, and some within the review band.
    const threshold = Number(((sorted[7] + sorted[8]) / 2).toFixed(4));
    await page.fill('#threshold', String(threshold));
    const cards = await readCards(page);
    for (const card of cards) {
      const p = nodeP.get(card.name) as number;
      expect(card.label, card.name).toBe(decide(p, threshold) ? 'Parasitized' : 'Uninfected');
      expect(card.review, card.name).toBe(needsReview(p, threshold));
    }
    const expected = summariseSlide([...nodeP.values()], threshold);
    expect(expected.toReview).toBeGreaterThan(0);
    expect(await text(page, '#parasitized')).toBe(String(expected.parasitized));
    expect(await text(page, '#to-review')).toBe(String(expected.toReview));

    await page.click('#threshold-reset');
    expect(await page.inputValue('#threshold')).toBe(String(SAVED_THRESHOLD));
    expect(await text(page, '#parasitized')).toBe(
      String(summariseSlide([...nodeP.values()], SAVED_THRESHOLD).parasitized),
    );
  });

  it('filters by label and review flag, and sorts by probability', async () => {
    const visible = async () => (await readCards(page)).filter((c) => !c.hidden);
    await page.selectOption('#filter', 'positive');
    const positives = [...nodeP].filter(([, p]) => decide(p, SAVED_THRESHOLD)).map(([name]) => name);
    expect((await visible()).map((c) => c.name).sort()).toEqual(positives.sort());
    expect(await text(page, '#shown')).toBe(`${positives.length} of ${files.length} shown`);

    await page.selectOption('#filter', 'review');
    const toReview = [...nodeP].filter(([, p]) => needsReview(p, SAVED_THRESHOLD)).map(([name]) => name);
    expect((await visible()).map((c) => c.name).sort()).toEqual(toReview.sort());

    await page.selectOption('#filter', 'all');
    await page.selectOption('#sort', 'p-desc');
    const byProbability = [...nodeP].sort((a, b) => b[1] - a[1]).map(([name]) => name);
    expect((await visible()).map((c) => c.name)).toEqual(byProbability);
    await page.selectOption('#sort', 'order');
    expect((await visible()).map((c) => c.name)).toEqual(files.map((f) => path.basename(f)));
  });

  it('exports the results as CSV: one row per cell with the label and both probabilities', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    expect(download.suggestedFilename()).toMatch(/^slide-\d{8}-\d{6}\.csv$/);
    const rows = parseCsv(await fs.readFile(await download.path(), 'utf8'));
    expect(rows[0]).toEqual(['file', 'label', 'p_Parasitized', 'p_Uninfected', 'check', 'threshold', 'error']);
    const cards = await readCards(page);
    expect(rows.slice(1).map((r) => r[0])).toEqual(cards.map((c) => c.name));
    for (const [name, label, pParasitized, pUninfected, check, threshold, error] of rows.slice(1)) {
      const card = cards.find((c) => c.name === name) as Card;
      expect(label).toBe(card.label);
      expect(Number(pParasitized)).toBe(card.p);
      expect(Math.abs(Number(pParasitized) + Number(pUninfected) - 1)).toBeLessThan(1e-5);
      expect(check).toBe(card.review ? 'yes' : '');
      expect(Number(threshold)).toBe(SAVED_THRESHOLD);
      expect(error).toBe('');
    }
  });

  it('takes a screenshot of the filled page', async () => {
    const png = await page.screenshot({ fullPage: true });
    const { width, height } = await sharp(png).metadata();
    expect(width).toBeGreaterThanOrEqual(1000);
    expect(height).toBeGreaterThan(500);
    // A blank or single-colour page would have (almost) no spread in its pixels.
    const { channels } = await sharp(png).stats();
    expect(Math.max(...channels.map((c) => c.stdev))).toBeGreaterThan(20);
  });

  it('marks an unreadable file and leaves it out of the counts; "New slide" starts over', async () => {
    await page.click('#clear');
    expect(await page.locator('#grid .cell').count()).toBe(0);
    const broken = path.join(work, 'broken.png');
    await fs.writeFile(broken, 'not an image at all');
    const cards = await classify(page, [broken, files[0]]);
    expect(cards.map((c) => c.state)).toEqual(['error', 'done']);
    expect(await text(page, '#cells')).toBe('1');
    expect(await text(page, '#progress')).toContain('1 unreadable');
  });

  it('takes a picked folder, skipping the files that are not images', async () => {
    await page.click('#clear');
    const folder = path.join(work, 'slide-7');
    await fs.mkdir(folder);
    for (const file of files.slice(0, 2)) await fs.copyFile(file, path.join(folder, path.basename(file)));
    await fs.writeFile(path.join(folder, 'Thumbs.db'), 'a Windows thumbnail cache');
    await page.setInputFiles('#pick-folder', folder);
    await page.waitForFunction(
      () =>
        document.querySelectorAll('#grid .cell[data-state="done"]').length === 2 &&
        document.body.dataset.state === 'ready',
    );
    const cards = await readCards(page);
    expect(cards.map((c) => c.name)).toEqual(files.slice(0, 2).map((f) => `slide-7/${path.basename(f)}`));
    expect(cards.map((c) => c.p)).toEqual(
      files.slice(0, 2).map((f) => expect.closeTo(nodeP.get(path.basename(f)) as number, 5)),
    );
    expect(await text(page, '#progress')).toBe('2 images classified; 1 other file skipped');
  });

  it('takes images dropped on the page', async () => {
    await page.click('#clear');
    const dropped = files.slice(2, 4);
    const images = await Promise.all(
      dropped.map(async (f) => ({ name: path.basename(f), base64: (await fs.readFile(f)).toString('base64') })),
    );
    const transfer = await page.evaluateHandle((list) => {
      const data = new DataTransfer();
      for (const { name, base64 } of list) {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        data.items.add(new File([bytes], name, { type: 'image/png' }));
      }
      return data;
    }, images);
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
    await page.waitForFunction(
      () =>
        document.querySelectorAll('#grid .cell[data-state="done"]').length === 2 &&
        document.body.dataset.state === 'ready',
    );
    const cards = await readCards(page);
    expect(cards.map((c) => c.name)).toEqual(images.map((i) => i.name));
    expect(cards.map((c) => c.p)).toEqual(images.map((i) => expect.closeTo(nodeP.get(i.name) as number, 5)));
  });

  it('with "Average 8 flips and rotations" gives a cell and its quarter turn the P Node gives them with --tta', async () => {
    await page.click('#clear');
    // At the model's own size, so resizing does not stand between the two.
    const upright = path.join(work, 'upright.png');
    const turned = path.join(work, 'turned.png');
    await sharp(files[0]).resize(SIZE, SIZE, { fit: 'fill' }).png().toFile(upright);
    await sharp(upright).rotate(90).png().toFile(turned);
    const { model } = await loadModel(path.join(work, 'model'));
    const x = await nodeInputs([upright, turned], SIZE);
    const plain = await batchProbabilities(tf, model, x, 2, { temperature: SAVED_TEMPERATURE });
    const tta = await batchProbabilities(tf, model, x, 2, { temperature: SAVED_TEMPERATURE, tta: true });
    model.dispose();
    expect(Math.abs(plain[0] - plain[2])).toBeGreaterThan(100 * TOLERANCE);

    await page.check('#tta');
    const cards = await classify(page, [upright, turned]);
    expect(cards.map((c) => c.p)).toEqual([expect.closeTo(tta[0], 5), expect.closeTo(tta[2], 5)]);
    expect(Math.abs((cards[0].p as number) - (cards[1].p as number))).toBeLessThanOrEqual(TOLERANCE);
    // Fixed for the slide: changed only after "New slide".
    expect(await page.isDisabled('#tta')).toBe(true);
    await page.click('#clear');
    await page.uncheck('#tta');
  });

  it('says so in the status line when a dropped folder cannot be read, with no unhandled rejection', async () => {
    const pageErrors: string[] = [];
    const onPageError = (error: Error) => void pageErrors.push(error.message);
    page.on('pageerror', onPageError);
    const statusBefore = await text(page, '#status');
    const cellsBefore = await page.locator('#grid .cell').count();
    // What Chrome hands the page for a dropped folder whose file went away before it was read.
    await page.evaluate(() => {
      const lost = {
        isFile: true,
        isDirectory: false,
        fullPath: '/slide-9/cell.png',
        file: (_resolve: unknown, reject: (error: DOMException) => void) =>
          reject(new DOMException('A requested file or directory could not be found', 'NotFoundError')),
      };
      const drop = new Event('drop', { bubbles: true, cancelable: true });
      Object.defineProperty(drop, 'dataTransfer', { value: { items: [{ webkitGetAsEntry: () => lost }], files: [] } });
      document.getElementById('drop')?.dispatchEvent(drop);
    });
    await page.waitForFunction((before) => document.getElementById('status')?.textContent !== before, statusBefore);
    // A turn for an unhandled rejection to be reported, if there were one.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100)));
    page.off('pageerror', onPageError);
    expect(await text(page, '#status')).toBe(
      'Could not read what was dropped: A requested file or directory could not be found. Drop it again, or pick the files or folder.',
    );
    expect(pageErrors).toEqual([]);
    expect(await page.locator('#grid .cell').count()).toBe(cellsBefore);
  });

  it('fetched nothing but its own files from the local server', () => {
    const foreign = requests.filter(
      (url) => !url.startsWith(server.url) && !url.startsWith('blob:') && !url.startsWith('data:'),
    );
    expect(requests.some((url) => url.endsWith('/vendor/tf.min.js'))).toBe(true);
    expect(foreign).toEqual([]);
  });

  it('loads and classifies again with the server gone (service worker cache)', async () => {
    await page.locator('#offline').waitFor({ state: 'visible' });
    await server.close();
    await openApp(page, server.url);
    const cards = await classify(page, files.slice(0, 3));
    expect(cards.map((c) => c.p)).toHaveLength(3);
    cards.forEach((card) =>
      expect(Math.abs((card.p as number) - (nodeP.get(card.name) as number))).toBeLessThanOrEqual(TOLERANCE),
    );
  });
});

describe('the field app for a model trained with area resize and balanced stain', () => {
  it('resizes and balances each cell as training did (to its saved reference), not with nearest sampling, the colours kept or the constant reference', async () => {
    await selectBackend('cpu');
    const work = await makeTempDir('malaria-app-area-');
    let server: AppServer | undefined;
    let context: BrowserContext | undefined;
    try {
      const files = await cellImages(path.join(work, 'cells'), 2);
      // A reference other than the constant: the app must balance to the one saved with the model.
      const stainReference: StainReference = [150, 120, 140];
      const model = await writeTinyModel(path.join(work, 'model'), files, {
        resize: 'area',
        stain: 'balance',
        stainReference,
      });
      const pOf = async (
        resize: 'nearest' | 'area',
        stain: 'keep' | 'balance',
        reference: StainReference = stainReference,
      ) =>
        predictRows(model, await nodeInputs(files, SIZE, resize, stain, reference), files.length, SIZE).map(
          (row) => row[0],
        );
      const area = await pOf('area', 'balance');
      const others = [
        await pOf('nearest', 'balance'),
        await pOf('area', 'keep'),
        await pOf('area', 'balance', REFERENCE_CELL_COLOUR),
      ];
      model.dispose();
      for (const other of others)
        expect(Math.max(...area.map((p, i) => Math.abs(p - other[i])))).toBeGreaterThan(100 * TOLERANCE);

      const app = await writeApp({ modelDir: path.join(work, 'model'), outDir: path.join(work, 'app') });
      server = await serveApp(app.outDir, 0);
      context = await launchChromium(path.join(work, 'profile'));
      const page = context.pages()[0] ?? (await context.newPage());
      await openApp(page, server.url);
      const cards = await classify(page, files);
      expect(cards.map((c) => c.name)).toEqual(files.map((f) => path.basename(f)));
      cards.forEach((card, i) => expect(Math.abs((card.p as number) - area[i])).toBeLessThanOrEqual(TOLERANCE));
    } finally {
      await context?.close();
      await server?.close();
      await removeDir(work);
    }
  });
});
