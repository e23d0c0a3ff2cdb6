// `train --exclude <csv>`: the files a run leaves out of training, listed in a CSV (a label review's suspects.csv,
// or any CSV with a header). Nothing is moved or deleted: the training split stays as it is on disk, the run just
// does not read those files. Validation and testing are never filtered, so every figure stays comparable.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describeFsError, UserError } from '../errors.js';
import { parseCsv } from '../io/csv.js';
import type { SplitListing } from './split-folder.js';
import { sha256File } from '../io/image-files.js';
import { mapLimit } from '../io/map-limit.js';

/** A list of files to leave out, and how its rows name them. */
export interface ExcludeList {
  /** The CSV as the user named it. */
  file: string;
  /** sha256 of the CSV's bytes: which list a model was trained without (saved in metadata.json). */
  sha256: string;
  /**
   * `sha256`: the rows name files by content (a `sha256` column; a copy, a renamed file or another split's copy
   * still matches). `name`: by file name (`file` column, its last path part), within the `label` column's class
   * folder when there is one.
   */
  by: 'sha256' | 'name';
  /** Distinct keys listed: sha256 hex, or `<class>/<name>` with a label column, or `<name>`. */
  keys: ReadonlySet<string>;
  /** Whether name keys carry the class. */
  withLabel: boolean;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Reads and checks the CSV; anything unusable is one line naming the file and what to pass instead. */
export async function readExcludeList(file: string): Promise<ExcludeList> {
  const what = `--exclude ${file}`;
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new UserError(describeFsError(err, what) ?? `${what}: cannot be read (${(err as Error).message})`);
  }
  const rows = parseCsv(bytes.toString('utf8')).filter((row) => row.some((field) => field.trim() !== ''));
  const header = (rows.shift() ?? []).map((name) => name.trim().toLowerCase());
  const column = (name: string) => header.indexOf(name);
  const [hashColumn, fileColumn, labelColumn] = [column('sha256'), column('file'), column('label')];
  if (hashColumn < 0 && fileColumn < 0) {
    throw new UserError(
      `${what} has no "file" or "sha256" column in its header: pass a label review's suspects.csv, or a CSV whose first line names those columns`,
    );
  }
  const by = hashColumn >= 0 ? 'sha256' : 'name';
  const withLabel = by === 'name' && labelColumn >= 0;
  const keys = new Set<string>();
  rows.forEach((row, i) => {
    const line = i + 2;
    if (by === 'sha256') {
      const hash = (row[hashColumn] ?? '').trim().toLowerCase();
      if (!SHA256.test(hash)) throw new UserError(`${what}, line ${line}: "${hash}" is not a sha256 (64 hex digits)`);
      keys.add(hash);
      return;
    }
    const name = path.posix.basename((row[fileColumn] ?? '').trim().replaceAll('\\', '/'));
    if (name === '') throw new UserError(`${what}, line ${line}: the file column is empty`);
    keys.add(withLabel ? `${(row[labelColumn] ?? '').trim()}/${name}` : name);
  });
  return { file, sha256: createHash('sha256').update(bytes).digest('hex'), by, keys, withLabel };
}

/** The training files a list names, and how many of its entries named no training file. */
export interface Exclusion {
  /** Paths of the listing's files to leave out. */
  paths: ReadonlySet<string>;
  /** Listed entries that match no file of the listing (in another split, or gone). */
  unmatched: number;
}

/** Matches a list against a split's listing: by content (hashing each file) or by class folder and name. */
export async function matchExcludeList(
  list: ExcludeList,
  listing: Pick<SplitListing, 'classNames' | 'files'>,
): Promise<Exclusion> {
  const keyOf = async (file: { path: string; label: number }): Promise<string> => {
    if (list.by === 'sha256') return sha256File(file.path);
    const name = path.basename(file.path);
    return list.withLabel ? `${listing.classNames[file.label]}/${name}` : name;
  };
  const keys = await mapLimit(listing.files, 8, keyOf);
  const paths = new Set<string>();
  const matched = new Set<string>();
  listing.files.forEach((file, i) => {
    if (!list.keys.has(keys[i])) return;
    paths.add(file.path);
    matched.add(keys[i]);
  });
  return { paths, unmatched: list.keys.size - matched.size };
}

/** What a run records of its exclusion: the list's sha256 and how many training images it left out. */
export interface ExcludedRecord {
  sha256: string;
  count: number;
}

/** The checkpoint's record also names the list as given, so a refused resume can say which list to pass. */
export interface CheckpointExclusion extends ExcludedRecord {
  file: string;
}

const short = (hash: string): string => hash.slice(0, 12);

/**
 * A resumed run leaves out what it left out before: the same list (by its sha256), or none. A different list, a
 * list added or one dropped would change the training set halfway through the run.
 */
export function assertSameExclusion(saved: CheckpointExclusion | undefined, list: ExcludeList | undefined): void {
  if (saved && !list) {
    throw new UserError(
      `the interrupted run left out the training images listed in ${saved.file} (sha256 ${short(saved.sha256)}): resume with --exclude ${saved.file}`,
    );
  }
  if (!saved && list) {
    throw new UserError(`the interrupted run trained on every training image: resume without --exclude ${list.file}`);
  }
  if (saved && list && saved.sha256 !== list.sha256) {
    throw new UserError(
      `--exclude ${list.file} (sha256 ${short(list.sha256)}) is not the list the interrupted run left out (${saved.file}, sha256 ${short(saved.sha256)}): resume with that list, unchanged`,
    );
  }
}
