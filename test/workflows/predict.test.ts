import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { predictFiles } from '../../src/workflows/predict.js';
import { silentReporter, type Reporter } from '../../src/report/reporter.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { pParasitized, saveBrightnessModel } from '../support/models.js';

let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('malaria-predict-workflow-');
  await saveBrightnessModel(path.join(dir, 'model'));
  const cells = path.join(dir, 'cells');
  await fs.mkdir(cells);
  for (const gray of [60, 200]) {
    await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: gray, g: gray, b: gray } } })
      .png()
      .toFile(path.join(cells, `gray-${gray}.png`));
  }
  // Named as an image, but not one: counted as failed, never thrown.
  await fs.writeFile(path.join(cells, 'broken.png'), 'not a png');
});

afterAll(async () => removeDir(dir));

/** A reporter that keeps the result lines. */
function keepResults(): Reporter & { results: string[] } {
  const results: string[] = [];
  return { ...silentReporter, json: true, results, result: (text) => void results.push(text) };
}

describe('predictFiles', () => {
  it('classifies the images of a folder without the CLI, counting the files it could not read', async () => {
    const report = keepResults();
    const options = { modelDir: path.join(dir, 'model'), backend: 'cpu' as const, batchSize: 2, json: true };
    const outcome = await predictFiles([path.join(dir, 'cells')], options, report);
    expect(outcome).toEqual({ classified: 2, failed: 1 });
    const rows = JSON.parse(report.results[0]) as { file: string; label?: string; probability?: number }[];
    const byName = new Map(rows.map((row) => [path.basename(row.file), row]));
    expect(byName.get('gray-200.png')?.probability).toBeCloseTo(pParasitized(200), 5);
    expect(byName.get('gray-200.png')?.label).toBe('Parasitized');
    expect(byName.get('gray-60.png')?.label).toBe('Uninfected');
    expect(byName.get('broken.png')).toHaveProperty('error');
  });
});
