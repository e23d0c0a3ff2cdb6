// `npm run build && node dist/scripts/stain-reference.js --data <split>/training [--every 6] [--per-patient]`
// Measures the reference colour of `--stain balance` (REFERENCE_CELL_COLOUR in src/input/stain.ts): each cell's mean
// colour over its foreground pixels (the black around it left out, as balanceStain does), averaged per patient,
// then over the patients, so a patient with many cells counts once. Every --every'th cell of the folder's listing
// (class order, then file name) is measured. With --per-patient it also prints each patient's mean (how C116P77's
// darker stain was found). The reference in stain.ts came from the training split of the 12,000-image subset split
// by patient (`build-dataset --group-by patient --seed 42`), every sixth cell.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { listSplit } from '../src/input/split-folder.js';
import { decodeRgb } from '../src/input/decode.js';
import { mapLimit } from '../src/io/map-limit.js';
import { patientIdOf } from '../src/dataset/patients.js';
import { BACKGROUND_SUM } from '../src/input/stain.js';
import { UserError } from '../src/errors.js';
import { runScript } from './run-script.js';

export type Rgb = [number, number, number];

/** The mean colour of a cell's foreground pixels (RGB triples), or undefined when it has none. */
export function foregroundMean(pixels: Uint8Array): Rgb | undefined {
  const sum: Rgb = [0, 0, 0];
  let count = 0;
  for (let i = 0; i < pixels.length; i += 3) {
    if (pixels[i] + pixels[i + 1] + pixels[i + 2] <= BACKGROUND_SUM) continue;
    for (let c = 0; c < 3; c++) sum[c] += pixels[i + c];
    count++;
  }
  return count === 0 ? undefined : (sum.map((s) => s / count) as Rgb);
}

const meanOf = (colours: readonly Rgb[]): Rgb =>
  [0, 1, 2].map((c) => colours.reduce((total, colour) => total + colour[c], 0) / colours.length) as Rgb;

export interface StainMeasurement {
  /** The mean over patients of each patient's mean cell colour. */
  reference: Rgb;
  /** Each patient's mean cell colour and how many of its cells were measured, by patient id. */
  patients: Map<string, { colour: Rgb; cells: number }>;
}

/** Cell colours (file name -> mean foreground colour) grouped by patient and averaged as the reference is. */
export function stainReference(cells: ReadonlyMap<string, Rgb>): StainMeasurement {
  const byPatient = new Map<string, Rgb[]>();
  for (const [file, colour] of cells) {
    const patient = patientIdOf(path.basename(file)) ?? path.basename(file);
    byPatient.set(patient, [...(byPatient.get(patient) ?? []), colour]);
  }
  if (byPatient.size === 0) throw new UserError('no cell with a foreground to measure');
  const patients = new Map(
    [...byPatient].map(([id, colours]) => [id, { colour: meanOf(colours), cells: colours.length }]),
  );
  return { reference: meanOf([...patients.values()].map((p) => p.colour)), patients };
}

const shown = (colour: Rgb): string => `(${colour.map((c) => Math.round(c)).join(', ')})`;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      every: { type: 'string', default: '6' },
      'per-patient': { type: 'boolean', default: false },
    },
  });
  const every = Number(values.every);
  if (!values.data || !Number.isInteger(every) || every < 1) {
    throw new UserError('pass --data <folder of class folders> [--every <n>, a whole number from 1] [--per-patient]');
  }
  const { files } = await listSplit(values.data);
  const measured = files.filter((_, i) => i % every === 0);
  const colours = await mapLimit(measured, 8, async (file) => foregroundMean((await decodeRgb(file.path)).data));
  const cells = new Map<string, Rgb>();
  measured.forEach((file, i) => {
    const colour = colours[i];
    if (colour) cells.set(file.path, colour);
  });
  const { reference, patients } = stainReference(cells);
  if (values['per-patient']) {
    for (const [id, { colour, cells: n }] of [...patients].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      console.log(`${id} ${shown(colour)} from ${n} cells`);
    }
  }
  console.log(`reference ${shown(reference)}: the mean of ${patients.size} patients' mean cells (${cells.size} cells)`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runScript('stain-reference', () => main(process.argv.slice(2)));
}
