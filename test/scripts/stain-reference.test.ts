import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runScript } from '../../scripts/run-script.js';
import { foregroundMean, main, stainReference, type Rgb } from '../../scripts/stain-reference.js';
import { makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('malaria-stain-reference-');
});
afterAll(async () => removeDir(dir));

/** A 20x20 cell of one colour in the middle of a 40x40 black crop, as NIH cells are. */
async function cell(file: string, [r, g, b]: Rgb): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const colour = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();
  await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite([{ input: colour, left: 10, top: 10 }])
    .png()
    .toFile(file);
}

describe('stain reference', () => {
  it('a cell’s colour leaves out its black background', () => {
    const pixels = Uint8Array.of(0, 0, 0, 200, 100, 50, 10, 10, 10, 100, 50, 150);
    expect(foregroundMean(pixels)).toEqual([150, 75, 100]);
    expect(foregroundMean(Uint8Array.of(0, 0, 0, 9, 9, 9))).toBeUndefined();
  });

  it('averages the cells per patient, then the patients, so a patient with many cells counts once', () => {
    const cells = new Map<string, Rgb>([
      ['C1P1thinF_IMG_1_cell_1.png', [200, 100, 100]],
      ['C1P1thinF_IMG_1_cell_2.png', [100, 100, 200]],
      ['C2P2thinF_IMG_1_cell_1.png', [150, 150, 150]],
    ]);
    const { reference, patients } = stainReference(cells);
    expect(reference).toEqual([150, 125, 150]);
    expect(patients.get('C1P1')).toEqual({ colour: [150, 100, 150], cells: 2 });
  });

  it('measures every n-th cell of a folder of class folders and prints each patient and the reference', async () => {
    const data = path.join(dir, 'training');
    // Listed in class order, then name: P/a (C1P1), P/b (C2P2), U/c (C1P1), U/d (C2P2).
    await cell(path.join(data, 'Parasitized', 'C1P1thinF_IMG_1_cell_a.png'), [200, 100, 100]);
    await cell(path.join(data, 'Parasitized', 'C2P2thinF_IMG_1_cell_b.png'), [150, 150, 150]);
    await cell(path.join(data, 'Uninfected', 'C1P1thinF_IMG_1_cell_c.png'), [100, 100, 200]);
    await cell(path.join(data, 'Uninfected', 'C2P2thinF_IMG_1_cell_d.png'), [90, 90, 90]);
    const out: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
    try {
      await runScript('stain-reference', () => main(['--data', data, '--every', '2', '--per-patient']));
    } finally {
      vi.restoreAllMocks();
    }
    // Every second cell: a and c, both of C1P1.
    expect(out).toEqual([
      'C1P1 (150, 100, 150) from 2 cells',
      "reference (150, 100, 150): the mean of 1 patients' mean cells (2 cells)",
    ]);
  });
});
