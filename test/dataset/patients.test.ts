import { promises as fsp } from 'node:fs';
import path from 'node:path';
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { patientIdOf, splitByPatient } from '../../src/dataset/patients.js';
import { splitSizes, type SplitItem } from '../../src/dataset/split.js';
import { SAMPLE_DIR } from '../support/sample.js';

describe('patientIdOf', () => {
  it('reads the slide id of NIH file names', () => {
    expect(patientIdOf('C100P61ThinF_IMG_20150918_144104_cell_162.png')).toBe('C100P61');
    expect(patientIdOf('C59P20thinF_IMG_20150803_111333_cell_144.png')).toBe('C59P20');
    expect(patientIdOf('C1_thinF_IMG_20150604_104722_cell_9.png')).toBe('C1');
    expect(patientIdOf('C61P22N_ThinF_IMG_20150818_110229_cell_111.png')).toBe('C61P22N');
    expect(patientIdOf('C38P3thinF_original_IMG_20150621_112043_cell_204.png')).toBe('C38P3');
    expect(patientIdOf('C3thin_original_IMG_20150608_162922_cell_11.png')).toBe('C3');
    // One slide photographed through two microscopes is one patient.
    expect(patientIdOf('C47P8thinOriginalOlympusCX21_IMG_20150703_150213_cell_5.png')).toBe('C47P8');
    expect(patientIdOf('C47P8thin_Original_Motic_IMG_20150703_150213_cell_5.png')).toBe('C47P8');
    expect(patientIdOf('C201ThinF_IMG_20151029_111411_cell_62.png')).toBe('C201');
  });

  it('returns undefined for names without an id', () => {
    expect(patientIdOf('cell 1.png')).toBeUndefined();
    expect(patientIdOf('_IMG_20150918_cell_1.png')).toBeUndefined();
    expect(patientIdOf('ThinF_IMG_20150918_cell_1.png')).toBeUndefined();
    expect(patientIdOf('x.png')).toBeUndefined();
  });

  it('finds an id in every bundled sample file', async () => {
    for (const className of ['Parasitized', 'Uninfected']) {
      for (const name of await fsp.readdir(path.join(SAMPLE_DIR, className))) {
        expect(patientIdOf(name), name).toMatch(/^C\d+[A-Z0-9]*$/);
      }
    }
  });
});

/** Patients with 1..max cells each (seeded sizes), split over two classes, plus some files without an id. */
function syntheticPatients(patients: number, maxCells: number, withoutId: number, seed = 'cells'): SplitItem[] {
  const random = seedrandom(seed);
  const items: SplitItem[] = [];
  for (let p = 0; p < patients; p++) {
    const cells = 1 + Math.floor(random() * maxCells);
    for (let c = 0; c < cells; c++) {
      const className = random() < 0.5 ? 'Parasitized' : 'Uninfected';
      const name = `C${p + 1}P${p}ThinF_IMG_20150918_${c}_cell_${c}.png`;
      items.push({ className, name, relativePath: `${className}/${name}` });
    }
  }
  for (let i = 0; i < withoutId; i++)
    items.push({ className: 'Uninfected', name: `extra ${i}.png`, relativePath: `Uninfected/extra ${i}.png` });
  return items;
}

const OPTIONS = { trainSplit: 0.8, valSplit: 0.1, seed: 42 };

describe('splitByPatient', () => {
  it('never puts one patient in two splits and keeps every image', () => {
    const items = syntheticPatients(150, 120, 0);
    const split = splitByPatient(items, OPTIONS);
    const owner = new Map<string, string>();
    for (const name of ['training', 'validation', 'testing'] as const) {
      for (const item of split[name]) {
        const id = patientIdOf(item.name)!;
        expect(owner.get(id) ?? name, `${id} is in ${owner.get(id)} and ${name}`).toBe(name);
        owner.set(id, name);
      }
    }
    expect(split.training.length + split.validation.length + split.testing.length).toBe(items.length);
    expect(split.patients.training + split.patients.validation + split.patients.testing).toBe(150);
    expect(split.withoutId).toBe(0);
  });

  it('comes as close to the per-image sizes as whole patients allow', () => {
    const items = syntheticPatients(150, 120, 0);
    const target = splitSizes(items.length, OPTIONS);
    const split = splitByPatient(items, OPTIONS);
    // With 150 groups of 1..120 cells there is enough choice to land within a couple of images.
    expect(Math.abs(split.testing.length - target.testing)).toBeLessThanOrEqual(2);
    const valTarget = Math.floor(0.1 * (items.length - split.testing.length));
    expect(Math.abs(split.validation.length - valTarget)).toBeLessThanOrEqual(2);
  });

  it('keeps sizes sensible when patients are few and large', () => {
    // 10 patients of 100..1000 cells: the split cannot be exact but must not be wildly off.
    const items = syntheticPatients(10, 1000, 0, 'big');
    const split = splitByPatient(items, OPTIONS);
    const target = splitSizes(items.length, OPTIONS).testing;
    const largest = Math.max(
      ...[...new Set(items.map((i) => patientIdOf(i.name)))].map(
        (id) => items.filter((i) => patientIdOf(i.name) === id).length,
      ),
    );
    expect(Math.abs(split.testing.length - target)).toBeLessThanOrEqual(largest / 2);
    expect(split.testing.length).toBeGreaterThan(0);
  });

  it('treats each file without a patient id as a group of one', () => {
    const items = syntheticPatients(20, 30, 25);
    const split = splitByPatient(items, OPTIONS);
    expect(split.withoutId).toBe(25);
    expect(split.patients.training + split.patients.validation + split.patients.testing).toBe(20);
    const extras = (list: readonly SplitItem[]): number => list.filter((item) => item.name.startsWith('extra')).length;
    expect(extras(split.training) + extras(split.validation) + extras(split.testing)).toBe(25);
    // Singletons are the fine-grained filler: with 25 of them the test size is exact.
    expect(split.testing.length).toBe(splitSizes(items.length, OPTIONS).testing);
  });

  it('is deterministic and seed-dependent', () => {
    const items = syntheticPatients(60, 50, 5);
    const ids = (list: readonly SplitItem[]): string[] => list.map((item) => item.relativePath).sort();
    const a = splitByPatient(items, OPTIONS);
    const b = splitByPatient([...items].reverse(), OPTIONS);
    expect(ids(b.testing)).toEqual(ids(a.testing));
    expect(ids(b.validation)).toEqual(ids(a.validation));
    const c = splitByPatient(items, { ...OPTIONS, seed: 43 });
    expect(ids(c.testing)).not.toEqual(ids(a.testing));
  });
});
