import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/io/csv.js';
import { SHEET, tileOrigin } from '../../src/report/error-sheet.js';
import type { OutOfFoldRow } from '../../src/stats/label-issues.js';
import { PATIENTS_HEADER, SUSPECTS_HEADER, writeLabelReview } from '../../src/workflows/label-review.js';
import { makeTempDir, removeDir } from '../support/temp.js';

const CLASSES = { positive: 'Parasitized', negative: 'Uninfected' };

let dir: string;
const input = () => path.join(dir, 'cells');
beforeAll(async () => {
  dir = await makeTempDir('malaria-label-review-');
});
afterAll(async () => removeDir(dir));

/** An NIH-named cell of one gray under input/<label>/, and its oof row (file relative to the input folder). */
async function cell(patient: string, index: number, label: string, gray: number, p: number): Promise<OutOfFoldRow> {
  const file = `${label}/${patient}ThinF_IMG_20150918_144104_cell_${index}.png`;
  await fsp.mkdir(path.join(input(), label), { recursive: true });
  await sharp({ create: { width: 30, height: 30, channels: 3, background: { r: gray, g: gray, b: gray } } })
    .png()
    .toFile(path.join(input(), file));
  return { file, sha256: `h${index}`, patient, label, fold: index % 2, probability: p };
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

describe('writeLabelReview', () => {
  it('writes the suspects most doubtful first, the counts per patient, and draws the suspects in that order', async () => {
    // t(Parasitized) = (0.9 + 0.8 + 0.1) / 3 = 0.6; t(Uninfected) = (0.95 + 0.9 + 0.25) / 3 = 0.7.
    const rows = [
      await cell('C1P1', 1, 'Parasitized', 200, 0.9),
      await cell('C1P1', 2, 'Parasitized', 201, 0.8),
      await cell('C2P2', 3, 'Parasitized', 60, 0.1), // P(Uninfected) 0.9 >= 0.7: margin 0.8
      await cell('C2P2', 4, 'Uninfected', 202, 0.05),
      await cell('C3P3', 5, 'Uninfected', 203, 0.1),
      await cell('C3P3', 6, 'Uninfected', 120, 0.75), // P(Parasitized) 0.75 >= 0.6: margin 0.5
    ];
    const outDir = path.join(dir, 'review');
    const review = await writeLabelReview({ outDir, rows, classes: CLASSES, inputDir: input() });
    expect(review.thresholds.positive).toBeCloseTo(0.6, 12);
    expect(review.thresholds.negative).toBeCloseTo(0.7, 12);
    expect(review.drawn).toBe(2);

    const suspects = parseCsv(await fsp.readFile(path.join(outDir, 'suspects.csv'), 'utf8'));
    expect(suspects).toEqual([
      SUSPECTS_HEADER,
      [rows[2].file, 'h3', 'C2P2', 'Parasitized', 'Uninfected', '0.1', '0.8'],
      [rows[5].file, 'h6', 'C3P3', 'Uninfected', 'Parasitized', '0.75', '0.5'],
    ]);
    const perPatient = parseCsv(await fsp.readFile(path.join(outDir, 'suspects-per-patient.csv'), 'utf8'));
    expect(perPatient).toEqual([PATIENTS_HEADER, ['C2P2', '2', '1'], ['C3P3', '2', '1'], ['C1P1', '2', '0']]);
    expect(review.perPatient[0]).toEqual({ patient: 'C2P2', cells: 2, suspects: 1 });

    const sheet = path.join(outDir, 'review.png');
    expect((await sharp(sheet).metadata()).height).toBe(SHEET.header + SHEET.cell + SHEET.caption + SHEET.gap);
    expect(await tileGray(sheet, 0)).toBe(60);
    expect(await tileGray(sheet, 1)).toBe(120);
    // Only the suspects are drawn: the third tile is empty page.
    expect(await tileGray(sheet, 2)).toBe(255);
    // The review reads the images and writes only its own three files.
    expect((await fsp.readdir(outDir)).sort()).toEqual(['review.png', 'suspects-per-patient.csv', 'suspects.csv']);
  });

  it('with no suspect, still writes the header-only CSV and an empty sheet', async () => {
    const rows = [await cell('C4P4', 7, 'Parasitized', 90, 0.9), await cell('C4P4', 8, 'Uninfected', 90, 0.1)];
    const outDir = path.join(dir, 'clean');
    const review = await writeLabelReview({ outDir, rows, classes: CLASSES, inputDir: input() });
    expect(review.suspects).toEqual([]);
    expect(await fsp.readFile(path.join(outDir, 'suspects.csv'), 'utf8')).toBe(`${SUSPECTS_HEADER.join(',')}\n`);
    expect(await tileGray(path.join(outDir, 'review.png'), 0)).toBe(255);
  });
});
