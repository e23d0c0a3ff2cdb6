// The definition of an image subset (data/nih-12000.csv.gz: the 12,000 NIH cells the README's and BENCHMARKS.md's
// figures come from) and the two jobs around it: defining one from a folder (scripts/subset-define.ts) and
// rebuilding it from `malaria download`'s cell_images/ (scripts/subset-rebuild.ts, `npm run subset`). The list is a
// gzipped CSV, `class,file,sha256`, sorted by class then file: the bytes of each image, not just its name, so a
// rebuilt subset is the same data or the rebuild refuses.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { csvLine, parseCsv } from '../src/io/csv.js';
import { classifyFile, readHeader, sha256File } from '../src/io/image-files.js';
import { mapLimit } from '../src/io/map-limit.js';
import { compareStrings } from '../src/dataset/split.js';
import { describeFsError, UserError } from '../src/errors.js';
import { replaceFolder, sweepLeftovers } from '../src/io/atomic.js';
import { assertApart } from '../src/io/output-folder.js';

export const DEFAULT_SUBSET_LIST = 'data/nih-12000.csv.gz';
export const SUBSET_HEADER = ['class', 'file', 'sha256'];

/** One image of a subset: its class folder, its file name in it, and the sha256 of its bytes. */
export interface SubsetEntry {
  className: string;
  file: string;
  sha256: string;
}

const SHA256 = /^[0-9a-f]{64}$/;
/** A class folder or file name: one path part, no separators, nothing hidden (Thumbs.db's kind is not listed). */
const PLAIN_NAME = /^[^/\\.][^/\\]*$/;

/** The gzipped CSV of `entries`, sorted by class then file (so the same subset always gives the same text). */
export function formatSubsetList(entries: readonly SubsetEntry[]): Buffer {
  const sorted = [...entries].sort(
    (a, b) => compareStrings(a.className, b.className) || compareStrings(a.file, b.file),
  );
  const text = csvLine(SUBSET_HEADER) + sorted.map((e) => csvLine([e.className, e.file, e.sha256])).join('');
  return gzipSync(text, { level: 9 });
}

/** Reads a subset list; anything that is not one is a one-line UserError naming the file. */
export async function readSubsetList(file: string): Promise<SubsetEntry[]> {
  let text: string;
  try {
    text = gunzipSync(await fs.readFile(file)).toString('utf8');
  } catch (err) {
    throw new UserError(describeFsError(err, `--list ${file}`) ?? `--list ${file} is not a gzipped subset list`);
  }
  const [header, ...rows] = parseCsv(text);
  if (header?.join(',') !== SUBSET_HEADER.join(',')) {
    throw new UserError(`--list ${file} does not start with the header ${SUBSET_HEADER.join(',')}`);
  }
  const seen = new Set<string>();
  return rows.map(([className, name, sha256], i) => {
    const key = `${className}/${name}`;
    if (
      !PLAIN_NAME.test(className ?? '') ||
      !PLAIN_NAME.test(name ?? '') ||
      !SHA256.test(sha256 ?? '') ||
      seen.has(key)
    ) {
      throw new UserError(`--list ${file}, line ${i + 2}: not a class, a file name and a sha256, or listed twice`);
    }
    seen.add(key);
    return { className, file: name, sha256 };
  });
}

/** The images of `<from>/<Class>/` (recognised by their bytes; other files and nested folders are not listed). */
export async function defineSubset(from: string): Promise<SubsetEntry[]> {
  const classes = (await fs.readdir(from, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory() && PLAIN_NAME.test(entry.name))
    .map((entry) => entry.name);
  const candidates: { className: string; file: string; full: string }[] = [];
  for (const className of classes) {
    for (const entry of await fs.readdir(path.join(from, className), { withFileTypes: true })) {
      if (entry.isFile() && PLAIN_NAME.test(entry.name)) {
        candidates.push({ className, file: entry.name, full: path.join(from, className, entry.name) });
      }
    }
  }
  const entries = await mapLimit(candidates, 8, async (c): Promise<SubsetEntry | undefined> => {
    const header = await readHeader(c.full);
    if (classifyFile(c.file, header, header.length).kind !== 'image') return undefined;
    return { className: c.className, file: c.file, sha256: await sha256File(c.full) };
  });
  return entries.filter((entry) => entry !== undefined);
}

/**
 * Why `out` may not receive the subset, or undefined when it may: it is missing, empty, or an earlier rebuild of
 * this list (only the list's class folders, holding only files the list names).
 */
async function notOurs(out: string, entries: readonly SubsetEntry[]): Promise<string | undefined> {
  let top;
  try {
    top = await fs.readdir(out, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return 'it is a file';
    throw err;
  }
  const listed = new Map<string, Set<string>>();
  for (const e of entries) listed.set(e.className, (listed.get(e.className) ?? new Set()).add(e.file));
  for (const entry of top) {
    const names = listed.get(entry.name);
    if (!names || !entry.isDirectory()) return `it holds ${entry.name}, which is not a class folder of the list`;
    for (const inner of await fs.readdir(path.join(out, entry.name), { withFileTypes: true })) {
      if (!inner.isFile() || !names.has(inner.name)) {
        return `it holds ${entry.name}/${inner.name}, which the list does not name`;
      }
    }
  }
  return undefined;
}

const sample = (names: readonly string[]): string =>
  names.slice(0, 3).join(', ') + (names.length > 3 ? `, and ${names.length - 3} more` : '');

export interface RebuildOptions {
  /** The subset list (default data/nih-12000.csv.gz). */
  list: string;
  /** Where the images are: `malaria download`'s cell_images/, with one folder per class. */
  from: string;
  /** The folder to write the subset into: missing, empty or an earlier rebuild of the same list. */
  out: string;
}

/**
 * Copies the listed images from `from` into `out` (built beside it and swapped in whole), each checked against its
 * sha256. Copies, not links: a link would let a later edit of the subset change the input. A missing or changed
 * image stops it with one line naming them, before `out` is touched; `from` is only read.
 */
export async function rebuildSubset(options: RebuildOptions): Promise<{ copied: number }> {
  const { from, out } = options;
  const entries = await readSubsetList(options.list);
  const stat = await fs.stat(from).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new UserError(`--from ${from} is not a folder: pass the cell_images folder \`malaria download\` extracted`);
  }
  await assertApart([{ path: out, label: `--out ${out}` }], [{ path: from, label: `--from ${from}` }]);
  // Leftovers of a rebuild killed while copying are ours to clear.
  await sweepLeftovers(path.dirname(path.resolve(out)), [path.basename(path.resolve(out))]);
  const reason = await notOurs(out, entries);
  if (reason) {
    throw new UserError(
      `--out ${out} is not empty and not a rebuild of this list (${reason}): choose a new or empty folder`,
    );
  }
  const missing: string[] = [];
  const changed: string[] = [];
  await replaceFolder(out, async (temp) => {
    for (const className of new Set(entries.map((e) => e.className))) await fs.mkdir(path.join(temp, className));
    await mapLimit(entries, 8, async (entry) => {
      const relative = `${entry.className}/${entry.file}`;
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(path.join(from, entry.className, entry.file));
      } catch {
        missing.push(relative);
        return;
      }
      if (createHash('sha256').update(bytes).digest('hex') !== entry.sha256) {
        changed.push(relative);
        return;
      }
      // The bytes just checked are the ones written.
      await fs.writeFile(path.join(temp, entry.className, entry.file), bytes);
    });
    if (missing.length + changed.length > 0) {
      const count = entries.length.toLocaleString('en-US');
      const problems = [
        missing.length
          ? `lacks ${missing.length} of the ${count} listed images (${sample(missing.sort(compareStrings))})`
          : '',
        changed.length
          ? `has ${changed.length} whose bytes differ from the listed sha256 (${sample(changed.sort(compareStrings))})`
          : '',
      ].filter(Boolean);
      throw new UserError(
        `--from ${from} ${problems.join(' and ')}: point --from at the cell_images folder \`malaria download\` extracted from the NIH cell_images.zip; nothing was written`,
      );
    }
  });
  return { copied: entries.length };
}
