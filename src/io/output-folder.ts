// The one rule for the folders commands write: an output never overlaps an input of the same command, and an
// existing output folder is only ever replaced when it is empty or holds exactly one of this tool's outputs of the
// kind the command writes. Ours is recognised by content, so folders written by earlier versions count too:
// - model: model.json (a layers model), metadata.json (ours), weights.bin, history.json, checkpoint/ (train and
//   export write these and nothing else);
// - app: the `.malaria-app` marker that `malaria app` writes, and only the app's own entries;
// - split: splits.csv with our header, and split folders whose class folders hold exactly the files it counts.
// Anything else in the folder (images, class folders, notes, another tool's model) makes it not ours.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError, describeFsError } from '../errors.js';
import { HISTORY_KEYS } from '../report/history.js';
import { parseCsv } from '../data/csv.js';
import { isSchemeTempName, parseTempName } from './atomic.js';

export type OutputKind = 'model' | 'app';

export const MODEL_ENTRIES = {
  model: 'model.json',
  weights: 'weights.bin',
  metadata: 'metadata.json',
  history: 'history.json',
} as const;
export const CHECKPOINT_FOLDERS = ['checkpoint', 'checkpoint.old'] as const;
const CHECKPOINT_ENTRIES = new Set([
  'model.json',
  'weights.bin',
  'optimizer.json',
  'optimizer.bin',
  'state.json',
  // The moving average of the weights (train --ema).
  'average.json',
  'average.bin',
]);

/** Marks a folder as written by `malaria app`; with only the app's own entries beside it, the app may replace it. */
export const APP_MARKER = '.malaria-app';
export const APP_MARKER_TEXT = 'Written by `malaria app`; `malaria app` may replace this folder.\n';
const APP_ENTRIES = new Set([APP_MARKER, 'index.html', 'sw.js', 'app.css', 'vendor', 'js', 'model']);

export const SPLIT_MANIFEST = 'splits.csv';
export const SPLIT_MANIFEST_HEADER = ['split', 'label', 'file', 'sha256', 'patient'];
export const REJECTED_MANIFEST = 'rejected.csv';
export const REJECTED_MANIFEST_HEADER = ['file', 'reason'];

const KIND_NAMES: Record<OutputKind, string> = {
  model: 'model written by `malaria train` or `malaria export`',
  app: 'web app written by `malaria app`',
};

/** True when `child` is `parent` or lies somewhere below it. */
export function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}

/** realpath of the longest existing ancestor plus the rest, so a not-yet-created folder compares correctly. */
export async function realPathAllowMissing(target: string): Promise<string> {
  const absolute = path.resolve(target);
  try {
    return await fs.realpath(absolute);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    const parent = path.dirname(absolute);
    if (parent === absolute) return absolute;
    return path.join(await realPathAllowMissing(parent), path.basename(absolute));
  }
}

export interface NamedPath {
  path: string;
  /** How the user knows it, for example "--model-dir malaria/model" or "the training split malaria/training". */
  label: string;
}

/**
 * Refuses an output that is, contains or lies inside an input of the same command (symlinks resolved), so no
 * output can overwrite, delete or mix into what the command reads.
 */
export async function assertApart(outputs: readonly NamedPath[], inputs: readonly NamedPath[]): Promise<void> {
  for (const output of outputs) {
    const out = await realPathAllowMissing(output.path);
    for (const input of inputs) {
      const inp = await realPathAllowMissing(input.path);
      const relation =
        out === inp ? 'is' : isInside(out, inp) ? 'lies inside' : isInside(inp, out) ? 'contains' : undefined;
      if (relation) {
        throw new UserError(
          `${output.label} ${relation} ${input.label}, which this command reads and must not change; choose a separate folder`,
        );
      }
    }
  }
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    const value: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Checks one entry of a model folder by its content; returns the reason it is not ours, or undefined. */
async function foreignModelEntry(dir: string, name: string, names: readonly string[]): Promise<string | undefined> {
  const file = path.join(dir, name);
  const stat = await fs.lstat(file);
  const isJsonOurs = async (check: (json: Record<string, unknown>) => boolean) => {
    const json = stat.isFile() ? await readJson(file) : undefined;
    return json !== undefined && check(json);
  };
  switch (name) {
    case MODEL_ENTRIES.model:
      return (await isJsonOurs((j) => typeof j.modelTopology === 'object' && Array.isArray(j.weightsManifest)))
        ? undefined
        : `${name} is not a TensorFlow.js layers model`;
    case MODEL_ENTRIES.metadata:
      return (await isJsonOurs(
        (j) => Array.isArray(j.classNames) && Number.isInteger(j.imageSize) && j.scaling === 'x/255',
      ))
        ? undefined
        : `${name} is not our model metadata`;
    case MODEL_ENTRIES.history:
      return (await isJsonOurs((j) => HISTORY_KEYS.every((k) => Array.isArray(j[k]))))
        ? undefined
        : `${name} is not our training history`;
    case MODEL_ENTRIES.weights:
      return stat.isFile() && names.includes(MODEL_ENTRIES.model)
        ? undefined
        : `${name} is not the weights of a model.json beside it`;
    case 'checkpoint':
    case 'checkpoint.old':
      return stat.isDirectory() ? foreignCheckpoint(file) : `${name} is not a checkpoint folder`;
    default:
      return parseTempName(name) ? undefined : `${name} is not a file this tool writes`;
  }
}

async function foreignCheckpoint(dir: string): Promise<string | undefined> {
  for (const name of await fs.readdir(dir)) {
    if (!CHECKPOINT_ENTRIES.has(name) && !parseTempName(name))
      return `${path.basename(dir)}/${name} is not a file this tool writes`;
  }
  return undefined;
}

/** Why the folder is not one of our model folders (its entries already listed), or undefined when it is. */
async function foreignModelFolder(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of [...names].sort()) {
    const reason = await foreignModelEntry(dir, name, names);
    if (reason) return reason;
  }
  // Some entry must say it is ours (a checked JSON file, or a temporary name of the current scheme): weights.bin
  // alone, or names earlier versions used, are not evidence enough.
  const evidence: string[] = [
    MODEL_ENTRIES.model,
    MODEL_ENTRIES.metadata,
    MODEL_ENTRIES.history,
    ...CHECKPOINT_FOLDERS,
  ];
  const ours = names.some((name) => evidence.includes(name) || isSchemeTempName(name));
  return ours ? undefined : 'it holds no model.json, metadata.json, history.json or checkpoint';
}

async function foreignAppFolder(dir: string, names: readonly string[]): Promise<string | undefined> {
  if (!names.includes(APP_MARKER)) return `it has no ${APP_MARKER} marker`;
  const marker = await fs.readFile(path.join(dir, APP_MARKER), 'utf8').catch(() => '');
  if (!marker.startsWith('Written by `malaria app`')) return `${APP_MARKER} is not the marker \`malaria app\` writes`;
  const other = names.find((name) => !APP_ENTRIES.has(name) && !parseTempName(name));
  return other === undefined ? undefined : `${other} is not part of the app`;
}

/** The one line for a folder that holds something this tool did not write: nothing is changed, and what to do. */
export function notOursError(label: string, what: string, reason: string): UserError {
  return new UserError(
    `${label} holds files that are not ${what} (${reason}); nothing was changed: choose another folder, or move those files away yourself`,
  );
}

/** What an output folder holds now: nothing (missing or empty), or one of our outputs of the expected kind. */
export type OutputState = 'missing' | 'empty' | 'ours';

/**
 * Checks the folder a command is about to write (`label` names it, for example "--model-dir malaria"): missing,
 * empty or ours is returned; anything else (a file, a folder with foreign content) is a one-line UserError that
 * says what to do. The caller decides whether "ours" needs --force.
 */
export async function checkOutputFolder(dir: string, kind: OutputKind, label: string): Promise<OutputState> {
  let names: string[];
  try {
    const stat = await fs.stat(dir);
    if (!stat.isDirectory()) throw new UserError(`${label} is a file, not a folder; choose a folder`);
    names = await fs.readdir(dir);
  } catch (err) {
    if (err instanceof UserError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new UserError(describeFsError(err, label) ?? `cannot read ${label}: ${(err as Error).message}`);
  }
  if (names.length === 0) return 'empty';
  const reason = kind === 'model' ? await foreignModelFolder(dir, names) : await foreignAppFolder(dir, names);
  if (reason) throw notOursError(label, `a ${KIND_NAMES[kind]}`, reason);
  return 'ours';
}

/**
 * Removes every entry of a folder checkOutputFolder() found ours (the folder itself stays: it may be a mount or a
 * link). weights.bin goes first, so a kill part-way leaves a folder still recognised as ours, never weights.bin
 * without the model.json that vouches for it.
 */
export async function emptyOurFolder(dir: string): Promise<void> {
  const names = (await fs.readdir(dir)).sort(
    (a, b) => Number(b === MODEL_ENTRIES.weights) - Number(a === MODEL_ENTRIES.weights),
  );
  for (const name of names) await fs.rm(path.join(dir, name), { recursive: true, force: true });
}

/** Files in each `<split>/<label>` of a splits.csv, keyed "split/label". */
function manifestCounts(text: string): Map<string, number> | undefined {
  const rows = parseCsv(text);
  if (rows.length === 0 || rows[0].join(',') !== SPLIT_MANIFEST_HEADER.join(',')) return undefined;
  const counts = new Map<string, number>();
  for (const row of rows.slice(1)) {
    if (row.length !== SPLIT_MANIFEST_HEADER.length) return undefined;
    const key = `${row[0]}/${row[1]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Why the split entries present in `outputDir` are not a split we wrote, or undefined when they are. */
async function foreignSplit(
  outputDir: string,
  present: readonly string[],
  splitNames: readonly string[],
): Promise<string | undefined> {
  if (!present.includes(SPLIT_MANIFEST)) return `it has ${present.join(', ')} but no ${SPLIT_MANIFEST}`;
  const counts = manifestCounts(await fs.readFile(path.join(outputDir, SPLIT_MANIFEST), 'utf8').catch(() => ''));
  if (!counts) return `${SPLIT_MANIFEST} is not the manifest \`malaria build-dataset\` writes`;
  if (present.includes(REJECTED_MANIFEST)) {
    const header = (await fs.readFile(path.join(outputDir, REJECTED_MANIFEST), 'utf8').catch(() => '')).split('\n')[0];
    if (header !== REJECTED_MANIFEST_HEADER.join(','))
      return `${REJECTED_MANIFEST} is not the list \`malaria build-dataset\` writes`;
  }
  for (const split of splitNames.filter((name) => present.includes(name))) {
    const splitDir = path.join(outputDir, split);
    if (!(await fs.lstat(splitDir)).isDirectory()) return `${split} is not a folder`;
    for (const label of await fs.readdir(splitDir)) {
      const classDir = path.join(splitDir, label);
      const expected = counts.get(`${split}/${label}`) ?? 0;
      if (!(await fs.lstat(classDir)).isDirectory()) return `${split}/${label} is not a class folder`;
      const entries = await fs.readdir(classDir, { withFileTypes: true });
      if (entries.some((entry) => !entry.isFile())) return `${split}/${label} holds something other than image files`;
      if (entries.length !== expected)
        return `${split}/${label} holds ${entries.length} files where ${SPLIT_MANIFEST} lists ${expected}`;
    }
  }
  return undefined;
}

/**
 * The split entries (`entries`: split folders and manifests) already in `outputDir`. When there are some, they
 * must be a split `malaria build-dataset` wrote (checked against its splits.csv), else a one-line UserError.
 */
export async function existingSplitEntries(
  outputDir: string,
  entries: readonly string[],
  splitNames: readonly string[],
  label: string,
): Promise<string[]> {
  const present: string[] = [];
  for (const entry of entries) {
    if (
      await fs.lstat(path.join(outputDir, entry)).then(
        () => true,
        () => false,
      )
    )
      present.push(entry);
  }
  if (present.length === 0) return present;
  const reason = await foreignSplit(outputDir, present, splitNames);
  if (reason) throw notOursError(label, `a split written by \`malaria build-dataset\``, reason);
  return present;
}
