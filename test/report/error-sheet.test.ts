import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { misclassifiedCells, renderErrorSheet, SHEET, tileOrigin } from '../../src/report/error-sheet.js';
import { decidedClasses } from '../../src/stats/evaluation.js';
import { makeTempDir, removeDir } from '../support/temp.js';

const CLASSES = ['Parasitized', 'Uninfected'];

/** Two-class predictions from P(Parasitized) per row and the true labels (0 = Parasitized). */
function twoClass(pParasitized: number[], labels: number[]) {
  return {
    probabilities: Float32Array.from(pParasitized.flatMap((p) => [p, 1 - p])),
    labels: Int32Array.from(labels),
    classes: 2,
  };
}

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('malaria-error-sheet-');
});
afterAll(async () => removeDir(dir));

/** A uniform cell of one gray, `size` pixels square, as a PNG file. */
async function grayCell(name: string, gray: number, size = 40): Promise<string> {
  const file = path.join(dir, name);
  await sharp({ create: { width: size, height: size, channels: 3, background: { r: gray, g: gray, b: gray } } })
    .png()
    .toFile(file);
  return file;
}

/** The gray at the centre of tile `index` of a sheet. */
async function tileGray(sheet: string, index: number): Promise<number> {
  const { left, top } = tileOrigin(index);
  const { data } = await sharp(sheet)
    .extract({ left: left + SHEET.cell / 2, top: top + SHEET.cell / 2, width: 1, height: 1 })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return data[0];
}

describe('misclassifiedCells', () => {
  it('lists only the wrong decisions, lowest probability of the true class first, ties in file order', () => {
    const predictions = twoClass([0.95, 0.2, 0.45, 0.7, 0.1, 0.2, 0.8], [0, 0, 0, 1, 1, 0, 1]);
    const files = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const cells = misclassifiedCells(
      predictions,
      decidedClasses(predictions, { classNames: CLASSES, positiveClass: 'Parasitized' }, 0.5),
      files,
      CLASSES,
    );
    expect(cells.map((cell) => [cell.file, cell.truth])).toEqual([
      ['b', 'Parasitized'],
      ['f', 'Parasitized'],
      ['g', 'Uninfected'],
      ['d', 'Uninfected'],
      ['c', 'Parasitized'],
    ]);
    expect(cells.map((cell) => cell.pTruth)).toEqual([0.2, 0.2, 0.2, 0.3, 0.45].map(Math.fround));
    // A lower threshold turns the missed 0.45 into a hit and flags nothing new here.
    const lower = misclassifiedCells(
      predictions,
      decidedClasses(predictions, { classNames: CLASSES, positiveClass: 'Parasitized' }, 0.4),
      files,
      CLASSES,
    );
    expect(lower.map((cell) => cell.file)).toEqual(['b', 'f', 'g', 'd']);
  });

  it('refuses files that do not line up with the rows', () => {
    const predictions = twoClass([0.9, 0.1], [0, 1]);
    expect(() => misclassifiedCells(predictions, Int32Array.of(0, 1), ['only one'], CLASSES)).toThrow(RangeError);
  });
});

describe('renderErrorSheet', () => {
  it('draws each cell in its tile, in the order given, on a sheet one row high for a few cells', async () => {
    const grays = [30, 90, 150, 210];
    const cells = await Promise.all(
      grays.map(async (gray, i) => ({
        file: await grayCell(`C${i}P${i}thinF_IMG_1_cell_${gray}.png`, gray),
        truth: 'Parasitized',
        pTruth: i / 10,
      })),
    );
    const sheet = path.join(dir, 'sheets', 'few.png');
    expect(await renderErrorSheet(cells, 'testing', sheet)).toBe(4);
    const image = await sharp(sheet).metadata();
    expect(image.format).toBe('png');
    expect(image.height).toBe(SHEET.header + SHEET.cell + SHEET.caption + SHEET.gap);
    for (const [i, gray] of grays.entries()) expect(await tileGray(sheet, i)).toBe(gray);
    // The fifth tile is empty page.
    expect(await tileGray(sheet, 4)).toBe(255);
  });

  it(`draws at most ${SHEET.limit} cells`, async () => {
    const file = await grayCell('plain.png', 120, 8);
    const cells = Array.from({ length: SHEET.limit + 5 }, (_, i) => ({
      file,
      truth: 'Uninfected',
      pTruth: i / 1000,
    }));
    const sheet = path.join(dir, 'many.png');
    expect(await renderErrorSheet(cells, 'validation', sheet)).toBe(SHEET.limit);
    const rows = Math.ceil(SHEET.limit / SHEET.columns);
    expect((await sharp(sheet).metadata()).height).toBe(SHEET.header + rows * (SHEET.cell + SHEET.caption + SHEET.gap));
    expect(await tileGray(sheet, SHEET.limit - 1)).toBe(120);
  });
});
