// The subset definition and its rebuild (scripts/subset-*.ts), on copies of malaria/sample standing for `malaria
// download`'s cell_images/, and the committed list of the 12,000 images checked against the sample drawn from them.
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_SUBSET_LIST,
  defineSubset,
  formatSubsetList,
  readSubsetList,
  rebuildSubset,
} from '../../scripts/subset-list.js';
import { main as defineMain } from '../../scripts/subset-define.js';
import { main as rebuildMain } from '../../scripts/subset-rebuild.js';
import { runScript } from '../../scripts/run-script.js';
import { UserError } from '../../src/errors.js';
import { CLASS_NAMES, copySample, SAMPLE_DIR, snapshotTree } from '../support/sample.js';
import { makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
/** The "download": 8 sample images per class, and a Thumbs.db the definition must not list. */
const download = () => path.join(dir, 'cell_images');
/** The subset to define: 3 images per class, from the middle of the download's. */
const subset = () => path.join(dir, 'subset');
const list = () => path.join(dir, 'subset.csv.gz');

beforeAll(async () => {
  dir = await makeTempDir('malaria-subset-');
  await copySample(download(), 8);
  await fsp.writeFile(path.join(download(), 'Parasitized', 'Thumbs.db'), 'not an image');
  await copySample(subset(), 3, 2);
  expect(await runCli('subset-define', () => defineMain(['--from', subset(), '--out', list()]))).toEqual({
    code: 0,
    errors: [],
  });
});
afterAll(async () => removeDir(dir));

/** Relative path -> sha256 of every file under `root`. */
async function contents(root: string): Promise<Map<string, string>> {
  const snapshot = await snapshotTree(root);
  return new Map([...snapshot].flatMap(([rel, entry]) => (typeof entry === 'object' ? [[rel, entry.sha256]] : [])));
}

/** Runs a script's main as the command line does: its one error line and exit code. */
async function runCli(name: string, main: () => Promise<void>): Promise<{ code: number; errors: string[] }> {
  const errors: string[] = [];
  const spy = vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  process.exitCode = undefined;
  try {
    await runScript(name, main);
    return { code: Number(process.exitCode ?? 0), errors };
  } finally {
    process.exitCode = undefined;
    spy.mockRestore();
    log.mockRestore();
  }
}

describe('subset-define', () => {
  it('lists each image of the class folders with its sha256, sorted, and nothing else', async () => {
    const entries = await readSubsetList(list());
    const expected = await contents(subset());
    expect(entries.map((e) => `${e.className}/${e.file}`)).toEqual([...expected.keys()].sort());
    for (const e of entries) expect(e.sha256).toBe(expected.get(`${e.className}/${e.file}`));
    // Thumbs.db lies in the download, not in the subset; defining the download leaves it out too.
    const whole = await defineSubset(download());
    expect(whole).toHaveLength(16);
    expect(whole.some((e) => e.file === 'Thumbs.db')).toBe(false);
  });
});

describe('subset-rebuild', () => {
  it('copies exactly the listed images out of the download, and leaves the download as it was', async () => {
    const before = await snapshotTree(download());
    const out = path.join(dir, 'rebuilt');
    expect(await rebuildSubset({ list: list(), from: download(), out })).toEqual({ copied: 6 });
    expect(await contents(out)).toEqual(await contents(subset()));
    expect(await snapshotTree(download())).toEqual(before);
    // An earlier rebuild of the same list is ours: rebuilding over it gives the same folder.
    await rebuildSubset({ list: list(), from: download(), out });
    expect(await contents(out)).toEqual(await contents(subset()));
  });

  it('refuses an image whose bytes are not the listed ones, and a missing one, in one line, writing nothing', async () => {
    const changed = path.join(dir, 'changed');
    await copySample(changed, 8);
    const [first] = (await readSubsetList(list())).filter((e) => e.className === 'Uninfected');
    await fsp.appendFile(path.join(changed, 'Uninfected', first.file), Buffer.from([0]));
    const [gone] = (await readSubsetList(list())).filter((e) => e.className === 'Parasitized');
    await fsp.rm(path.join(changed, 'Parasitized', gone.file));
    const before = await snapshotTree(changed);
    const out = path.join(dir, 'refused');
    const refused = await runCli('subset', () => rebuildMain(['--list', list(), '--from', changed, '--out', out]));
    expect(refused.code).toBe(2);
    expect(refused.errors).toEqual([
      `subset: --from ${changed} lacks 1 of the 6 listed images (Parasitized/${gone.file}) and has 1 whose bytes differ from the listed sha256 (Uninfected/${first.file}): point --from at the cell_images folder \`malaria download\` extracted from the NIH cell_images.zip; nothing was written`,
    ]);
    expect(existsSync(out)).toBe(false);
    expect((await fsp.readdir(dir)).filter((name) => name.includes('malaria-tmp'))).toEqual([]);
    expect(await snapshotTree(changed)).toEqual(before);
  });

  it('refuses a list whose sha256 does not match the image, even with the same name', async () => {
    const entries = await readSubsetList(list());
    const tampered = path.join(dir, 'tampered.csv.gz');
    await fsp.writeFile(tampered, formatSubsetList([{ ...entries[0], sha256: '0'.repeat(64) }, ...entries.slice(1)]));
    const out = path.join(dir, 'tampered-out');
    await expect(rebuildSubset({ list: tampered, from: download(), out })).rejects.toThrow(
      new RegExp(`has 1 whose bytes differ from the listed sha256 \\(${entries[0].className}/${entries[0].file}\\)`),
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses an --out that holds anything else, and one inside --from, changing nothing', async () => {
    const notes = path.join(dir, 'notes');
    await fsp.mkdir(path.join(notes, 'Parasitized'), { recursive: true });
    await fsp.writeFile(path.join(notes, 'Parasitized', 'mine.txt'), 'keep me');
    const before = await snapshotTree(notes);
    await expect(rebuildSubset({ list: list(), from: download(), out: notes })).rejects.toThrow(
      `--out ${notes} is not empty and not a rebuild of this list (it holds Parasitized/mine.txt, which the list does not name): choose a new or empty folder`,
    );
    expect(await snapshotTree(notes)).toEqual(before);
    await expect(
      rebuildSubset({ list: list(), from: download(), out: path.join(download(), 'subset') }),
    ).rejects.toThrow(UserError);
    expect(existsSync(path.join(download(), 'subset'))).toBe(false);
  });

  it('refuses a file that is not a subset list in one line', async () => {
    const bad = path.join(dir, 'bad.csv.gz');
    await fsp.writeFile(bad, gzipSync('file,sha256\na.png,00\n'));
    await expect(readSubsetList(bad)).rejects.toThrow(`--list ${bad} does not start with the header class,file,sha256`);
    await fsp.writeFile(bad, 'plain text');
    await expect(readSubsetList(bad)).rejects.toThrow(`--list ${bad} is not a gzipped subset list`);
  });
});

describe(`the committed ${DEFAULT_SUBSET_LIST}`, () => {
  it('defines 6,000 images per class, each once, and holds every sample image (drawn from them) byte for byte', async () => {
    const entries = await readSubsetList(DEFAULT_SUBSET_LIST);
    for (const className of CLASS_NAMES) {
      expect(entries.filter((e) => e.className === className)).toHaveLength(6000);
    }
    expect(new Set(entries.map((e) => e.sha256)).size).toBe(12_000);
    const bySha = new Map(entries.map((e) => [`${e.className}/${e.file}`, e.sha256]));
    for (const className of CLASS_NAMES) {
      for (const name of await fsp.readdir(path.join(SAMPLE_DIR, className))) {
        const bytes = await fsp.readFile(path.join(SAMPLE_DIR, className, name));
        expect(bySha.get(`${className}/${name}`), name).toBe(createHash('sha256').update(bytes).digest('hex'));
      }
    }
    // Sorted and plain: the list's text is what formatSubsetList writes for these entries.
    expect(gunzipSync(formatSubsetList(entries)).equals(gunzipSync(await fsp.readFile(DEFAULT_SUBSET_LIST)))).toBe(
      true,
    );
  });
});
