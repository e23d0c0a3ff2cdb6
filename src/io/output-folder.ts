// The one rule for the folders commands write: an output never overlaps an input of the same command, and an
// existing output folder is only ever replaced when it is empty or holds exactly one of this tool's outputs of the
// kind the command writes. Ours is recognised by content, so folders written by earlier versions count too:
// - model: model.json (a layers model), metadata.json (ours), weights.bin, history.json, checkpoint/ and this
//   tool's temporary names for them (train and export write these and nothing else), among which our metadata.json,
//   a checkpoint with our state.json or such a temporary name says the folder is ours: model.json and weights.bin
//   alone are what any TensorFlow.js program saves;
// - app: the `.malaria-app` marker that `malaria app` writes, listing every file of the app with its size, and
//   those files only, at any depth;
// - split: splits.csv with our header, and split folders whose class folders hold exactly the files it lists, by
//   name and size.
// Anything else in the folder (images, class folders, notes, another tool's model) makes it not ours.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError, describeFsError } from '../errors.js';
import { parseCsv } from './csv.js';
import { parseTempName, tempPath } from './atomic.js';

export type OutputKind = 'model' | 'app' | 'crossval';

export const MODEL_ENTRIES = {
  model: 'model.json',
  weights: 'weights.bin',
  metadata: 'metadata.json',
  history: 'history.json',
} as const;
/** history.json's series, in Keras' History.history names (src/model/history.ts is the record itself). */
export const HISTORY_KEYS = ['loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr'] as const;
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

/** Marks a folder as written by `malaria app`; with only the files it lists, the app may replace the folder. */
export const APP_MARKER = '.malaria-app';
/** The marker's first line; alone, it is an earlier version's marker, whose app's files sw.js lists. */
export const APP_MARKER_TEXT = 'Written by `malaria app`; `malaria app` may replace this folder.\n';

/** The marker for an app of `files` ('/'-separated paths relative to the app folder -> sizes in bytes). */
export function appMarkerText(files: Readonly<Record<string, number>>): string {
  return `${APP_MARKER_TEXT}${JSON.stringify({ files })}\n`;
}

export const SPLIT_MANIFEST = 'splits.csv';
export const SPLIT_MANIFEST_HEADER = ['split', 'label', 'file', 'sha256', 'patient', 'bytes'];
/** The header before splits.csv recorded sizes: still read, its copies compared by sha256 instead. */
const SPLIT_MANIFEST_HEADER_V1 = SPLIT_MANIFEST_HEADER.slice(0, 5);
export const REJECTED_MANIFEST = 'rejected.csv';
export const REJECTED_MANIFEST_HEADER = ['file', 'reason'];

const KIND_NAMES: Record<OutputKind, string> = {
  model: 'model written by `malaria train` or `malaria export`',
  app: 'web app written by `malaria app`',
  crossval: 'cross-validation written by `malaria crossval`',
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

/** Temporary names a model folder may hold: this tool's, for one of the entries it writes there. */
const MODEL_TEMP_BASES: ReadonlySet<string> = new Set([...Object.values(MODEL_ENTRIES), ...CHECKPOINT_FOLDERS]);
const isModelTemp = (name: string): boolean => MODEL_TEMP_BASES.has(parseTempName(name)?.base ?? '');

/** One entry of a model folder, checked by content: why it is not ours, and whether it says the folder is ours. */
interface EntryVerdict {
  reason?: string;
  /** Our metadata.json, a checkpoint with our state.json, or a temporary name of ours. */
  evidence: boolean;
}

async function modelEntry(dir: string, name: string, names: readonly string[]): Promise<EntryVerdict> {
  const file = path.join(dir, name);
  const stat = await fs.lstat(file);
  const isJsonOurs = async (check: (json: Record<string, unknown>) => boolean) => {
    const json = stat.isFile() ? await readJson(file) : undefined;
    return json !== undefined && check(json);
  };
  const verdict = (ours: boolean, reason: string, evidence = false): EntryVerdict =>
    ours ? { evidence } : { reason, evidence: false };
  switch (name) {
    case MODEL_ENTRIES.model:
      return verdict(
        await isJsonOurs((j) => typeof j.modelTopology === 'object' && Array.isArray(j.weightsManifest)),
        `${name} is not a TensorFlow.js layers model`,
      );
    case MODEL_ENTRIES.metadata:
      return verdict(
        await isJsonOurs((j) => Array.isArray(j.classNames) && Number.isInteger(j.imageSize) && j.scaling === 'x/255'),
        `${name} is not our model metadata`,
        true,
      );
    case MODEL_ENTRIES.history:
      return verdict(
        await isJsonOurs((j) => HISTORY_KEYS.every((k) => Array.isArray(j[k]))),
        `${name} is not our training history`,
      );
    case MODEL_ENTRIES.weights:
      return verdict(
        stat.isFile() && names.includes(MODEL_ENTRIES.model),
        `${name} is not the weights of a model.json beside it`,
      );
    case 'checkpoint':
    case 'checkpoint.old':
      return stat.isDirectory()
        ? checkpointEntry(file)
        : { reason: `${name} is not a checkpoint folder`, evidence: false };
    default:
      return verdict(isModelTemp(name), `${name} is not a file this tool writes`, true);
  }
}

const CHECKPOINT_STATE = 'state.json';

async function checkpointEntry(dir: string): Promise<EntryVerdict> {
  const names = await fs.readdir(dir);
  for (const name of names.sort()) {
    if (!CHECKPOINT_ENTRIES.has(name)) {
      return { reason: `${path.basename(dir)}/${name} is not a file this tool writes`, evidence: false };
    }
  }
  if (!names.includes(CHECKPOINT_STATE)) return { evidence: false };
  const state = (await fs.lstat(path.join(dir, CHECKPOINT_STATE))).isFile()
    ? await readJson(path.join(dir, CHECKPOINT_STATE))
    : undefined;
  const isObject = (value: unknown) => typeof value === 'object' && value !== null;
  // The run's recipe; version 1 kept the training loop's `settings` instead.
  const ours =
    state !== undefined &&
    Number.isInteger(state.version) &&
    Number.isInteger(state.epochsCompleted) &&
    (isObject(state.recipe) || isObject(state.settings)) &&
    isObject(state.history);
  return ours
    ? { evidence: true }
    : { reason: `${path.basename(dir)}/${CHECKPOINT_STATE} is not our checkpoint state`, evidence: false };
}

/** Refuses a checkpoint folder (missing is fine) that holds anything `train` does not write there. */
export async function assertOurCheckpoint(dir: string, label: string): Promise<void> {
  const isFolder = await fs.lstat(dir).then(
    (stat) => stat.isDirectory(),
    () => undefined,
  );
  if (isFolder === undefined) return;
  const reason = isFolder ? (await checkpointEntry(dir)).reason : `${path.basename(dir)} is not a checkpoint folder`;
  if (reason) throw notOursError(label, `a ${KIND_NAMES.model}`, reason);
}

/** Why the folder is not one of our model folders (its entries already listed), or undefined when it is. */
async function foreignModelFolder(dir: string, names: readonly string[]): Promise<string | undefined> {
  let evidence = false;
  for (const name of [...names].sort()) {
    const verdict = await modelEntry(dir, name, names);
    if (verdict.reason) return verdict.reason;
    evidence ||= verdict.evidence;
  }
  return evidence ? undefined : 'it has no metadata.json of ours and no checkpoint with our state.json';
}

/** The files of an app by '/'-separated path, with their sizes when the marker records them; else why not ours. */
async function appFiles(dir: string): Promise<Map<string, number | undefined> | string> {
  const notMarker = `${APP_MARKER} is not the marker \`malaria app\` writes`;
  const marker = await fs.readFile(path.join(dir, APP_MARKER), 'utf8').catch(() => '');
  if (!marker.startsWith(APP_MARKER_TEXT)) return notMarker;
  const listing = marker.slice(APP_MARKER_TEXT.length).trim();
  if (listing === '') {
    // An earlier version's marker lists nothing; its service worker lists every other file of the app.
    const sw = await fs.readFile(path.join(dir, 'sw.js'), 'utf8').catch(() => '');
    const cached = /const FILES = (\[.*?\]);/.exec(sw)?.[1];
    let files: unknown;
    try {
      files = cached === undefined ? undefined : JSON.parse(cached);
    } catch {
      files = undefined;
    }
    if (!Array.isArray(files) || !files.every((file) => typeof file === 'string'))
      return `${APP_MARKER} lists no files and sw.js does not either`;
    return new Map([...files.filter((file) => file !== './'), 'sw.js'].map((file) => [file, undefined]));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(listing);
  } catch {
    return notMarker;
  }
  const files = (parsed as { files?: unknown } | null)?.files;
  if (typeof files !== 'object' || files === null) return notMarker;
  const sizes = Object.entries(files as Record<string, unknown>);
  if (!sizes.every(([, size]) => Number.isInteger(size) && (size as number) >= 0)) return notMarker;
  return new Map(sizes as [string, number][]);
}

/** Why the folder is not an app `malaria app` wrote: anything at any depth that its marker does not list. */
async function foreignAppFolder(dir: string, names: readonly string[]): Promise<string | undefined> {
  if (!names.includes(APP_MARKER)) return `it has no ${APP_MARKER} marker`;
  const files = await appFiles(dir);
  if (typeof files === 'string') return files;
  const folders = new Set(
    [...files.keys()].flatMap((file) =>
      file
        .split('/')
        .slice(0, -1)
        .map((_, i, parts) => parts.slice(0, i + 1).join('/')),
    ),
  );
  const visit = async (relative: string): Promise<string | undefined> => {
    const entries = await fs.readdir(path.join(dir, relative), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (name === APP_MARKER) continue;
      if (entry.isDirectory()) {
        if (!folders.has(name)) return `${name} is not part of the app`;
        const reason = await visit(name);
        if (reason) return reason;
        continue;
      }
      if (!entry.isFile() || !files.has(name)) return `${name} is not part of the app`;
      const size = files.get(name);
      const actual = (await fs.lstat(path.join(dir, name))).size;
      if (size !== undefined && actual !== size)
        return `${name} is not the file \`malaria app\` wrote (${actual} bytes, it wrote ${size})`;
    }
    return undefined;
  };
  return visit('');
}

/** `malaria crossval --out`: its settings file (the evidence), its fold model folders and fold CSVs, its outputs. */
export const CROSSVAL_SETTINGS = 'crossval-settings.json';
export const CROSSVAL_FORMAT = 'malaria-crossval';
const CROSSVAL_OUTPUTS: ReadonlySet<string> = new Set([
  'oof.csv',
  'crossval.json',
  'roc.png',
  // The label review (workflows/label-review.ts).
  'suspects.csv',
  'suspects-per-patient.csv',
  'review.png',
]);
/** fold-N/ (a model folder) and fold-N.csv (that fold's held-out probabilities). */
const CROSSVAL_FOLD_ENTRY = /^fold-(\d+)(\.csv)?$/;

/** Why the folder is not a cross-validation `malaria crossval` wrote, or undefined when it is. */
async function foreignCrossvalFolder(dir: string, names: readonly string[]): Promise<string | undefined> {
  if (!names.includes(CROSSVAL_SETTINGS)) return `it has no ${CROSSVAL_SETTINGS}`;
  if ((await readJson(path.join(dir, CROSSVAL_SETTINGS)))?.format !== CROSSVAL_FORMAT)
    return `${CROSSVAL_SETTINGS} is not the settings file \`malaria crossval\` writes`;
  for (const name of [...names].sort()) {
    if (name === CROSSVAL_SETTINGS || CROSSVAL_OUTPUTS.has(name) || parseTempName(name)) continue;
    const fold = CROSSVAL_FOLD_ENTRY.exec(name);
    const stat = fold ? await fs.lstat(path.join(dir, name)) : undefined;
    if (fold?.[2] && stat?.isFile()) continue;
    if (fold && !fold[2] && stat?.isDirectory()) {
      const entries = await fs.readdir(path.join(dir, name));
      // A fold stopped before its first epoch completed leaves an empty folder.
      const reason = entries.length === 0 ? undefined : await foreignModelFolder(path.join(dir, name), entries);
      if (reason) return `${name}: ${reason}`;
      continue;
    }
    return `${name} is not a file \`malaria crossval\` writes`;
  }
  return undefined;
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
  const reason =
    kind === 'model'
      ? await foreignModelFolder(dir, names)
      : kind === 'crossval'
        ? await foreignCrossvalFolder(dir, names)
        : await foreignAppFolder(dir, names);
  if (reason) throw notOursError(label, `a ${KIND_NAMES[kind]}`, reason);
  return 'ours';
}

/**
 * Removes every entry of a folder checkOutputFolder() found ours (the folder itself stays: it may be a mount or a
 * link). With `recheck`, checks it again first: the command checked it at its start, and a long run leaves time
 * for a file of someone's to appear. The entries go in an order that leaves a folder still recognised as ours
 * after a kill at any point: weights.bin before the model.json that vouches for it, what says the folder is ours
 * (metadata.json, a checkpoint with its state, crossval's settings) last, and folders under a temporary name of
 * ours before their removal begins.
 */
export async function emptyOurFolder(dir: string, recheck?: { kind: OutputKind; label: string }): Promise<void> {
  if (recheck && (await checkOutputFolder(dir, recheck.kind, recheck.label)) !== 'ours') return;
  const names = await fs.readdir(dir);
  const rank = async (name: string): Promise<number> => {
    if (name === MODEL_ENTRIES.weights) return 0;
    if (name === MODEL_ENTRIES.model) return 1;
    if (name === CROSSVAL_SETTINGS) return 3;
    return (await modelEntry(dir, name, names)).evidence ? 3 : 2;
  };
  const ranked = await Promise.all(names.map(async (name) => ({ name, rank: await rank(name) })));
  ranked.sort((a, b) => a.rank - b.rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { name } of ranked) {
    const entry = path.join(dir, name);
    if ((await fs.lstat(entry)).isDirectory()) {
      const aside = tempPath(entry);
      await fs.rename(entry, aside);
      await fs.rm(aside, { recursive: true, force: true });
    } else {
      await fs.rm(entry, { force: true });
    }
  }
}

/**
 * The name build-dataset gives the copy of `sourceName` in a class folder of a split: the same name, or
 * `<stem>-<first 8 of its sha256><ext>` when a different image of that split and class took it first (compared
 * without case, for case-insensitive disks). `taken` holds the names given so far in that folder, lower-cased.
 */
export function splitCopyName(sourceName: string, sha256: string, taken: Set<string>): string {
  let name = sourceName;
  if (taken.has(name.toLowerCase())) {
    const ext = path.extname(name);
    name = `${name.slice(0, name.length - ext.length)}-${sha256.slice(0, 8)}${ext}`;
  }
  taken.add(name.toLowerCase());
  return name;
}

/** A copy splits.csv lists: its content's sha256 and (since the manifest records it) its size. */
interface ListedCopy {
  sha256: string;
  bytes?: number;
}

/**
 * The copies a splits.csv lists, by "split/label" and then by copy name (its rows replayed in order through
 * splitCopyName, as build-dataset named them); undefined when the text is not a manifest of ours.
 */
function manifestCopies(text: string): Map<string, Map<string, ListedCopy>> | undefined {
  const rows = parseCsv(text);
  const header = rows[0]?.join(',');
  const width = [SPLIT_MANIFEST_HEADER, SPLIT_MANIFEST_HEADER_V1].find((h) => h.join(',') === header)?.length;
  if (width === undefined) return undefined;
  const copies = new Map<string, Map<string, ListedCopy>>();
  const taken = new Map<string, Set<string>>();
  for (const row of rows.slice(1)) {
    if (row.length !== width || !/^[0-9a-f]{64}$/.test(row[3])) return undefined;
    if (width === SPLIT_MANIFEST_HEADER.length && !/^\d+$/.test(row[5])) return undefined;
    const key = `${row[0]}/${row[1]}`;
    if (!copies.has(key)) {
      copies.set(key, new Map());
      taken.set(key, new Set());
    }
    const name = splitCopyName(row[2].split('/').pop() ?? '', row[3], taken.get(key)!);
    copies.get(key)!.set(name, { sha256: row[3], bytes: row[5] === undefined ? undefined : Number(row[5]) });
  }
  return copies;
}

async function sha256Of(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

/** Why a class folder of a split is not the copies splits.csv lists for it (by name, then size or sha256). */
async function foreignClassFolder(
  classDir: string,
  relative: string,
  listed: ReadonlyMap<string, ListedCopy>,
): Promise<string | undefined> {
  const entries = await fs.readdir(classDir, { withFileTypes: true });
  if (entries.some((entry) => !entry.isFile())) return `${relative} holds something other than image files`;
  if (entries.length !== listed.size)
    return `${relative} holds ${entries.length} files where ${SPLIT_MANIFEST} lists ${listed.size}`;
  for (const name of entries.map((entry) => entry.name).sort()) {
    const copy = listed.get(name);
    if (!copy) return `${relative}/${name} is not a file ${SPLIT_MANIFEST} lists`;
    const file = path.join(classDir, name);
    if (copy.bytes !== undefined) {
      const size = (await fs.lstat(file)).size;
      if (size !== copy.bytes)
        return `${relative}/${name} is ${size} bytes where ${SPLIT_MANIFEST} records ${copy.bytes}`;
    } else if ((await sha256Of(file)) !== copy.sha256) {
      // A manifest of an earlier version records no sizes: the content itself is compared.
      return `${relative}/${name} is not the image ${SPLIT_MANIFEST} lists (its sha256 differs)`;
    }
  }
  return undefined;
}

/** Why the split entries present in `outputDir` are not the split `manifest` lists, or undefined when they are. */
async function foreignSplit(
  outputDir: string,
  present: readonly string[],
  splitNames: readonly string[],
  manifest: string,
): Promise<string | undefined> {
  const text = await fs.readFile(manifest, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    return '';
  });
  if (text === undefined) return `it has ${present.join(', ')} but no ${SPLIT_MANIFEST}`;
  const copies = manifestCopies(text);
  if (!copies) return `${SPLIT_MANIFEST} is not the manifest \`malaria build-dataset\` writes`;
  if (present.includes(REJECTED_MANIFEST)) {
    const header = (await fs.readFile(path.join(outputDir, REJECTED_MANIFEST), 'utf8').catch(() => '')).split('\n')[0];
    if (header !== REJECTED_MANIFEST_HEADER.join(','))
      return `${REJECTED_MANIFEST} is not the list \`malaria build-dataset\` writes`;
  }
  for (const split of splitNames.filter((name) => present.includes(name))) {
    const splitDir = path.join(outputDir, split);
    if (!(await fs.lstat(splitDir)).isDirectory()) return `${split} is not a folder`;
    for (const label of (await fs.readdir(splitDir)).sort()) {
      const classDir = path.join(splitDir, label);
      if (!(await fs.lstat(classDir)).isDirectory()) return `${split}/${label} is not a class folder`;
      const reason = await foreignClassFolder(
        classDir,
        `${split}/${label}`,
        copies.get(`${split}/${label}`) ?? new Map(),
      );
      if (reason) return reason;
    }
  }
  return undefined;
}

/**
 * The split entries (`entries`: split folders and manifests) already in `outputDir`. When there are some, they
 * must be a split `malaria build-dataset` wrote, checked against `manifest` (its splits.csv, or the one of an
 * interrupted swap that moved some of them in), else a one-line UserError.
 */
export async function existingSplitEntries(
  outputDir: string,
  entries: readonly string[],
  splitNames: readonly string[],
  label: string,
  manifest = path.join(outputDir, SPLIT_MANIFEST),
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
  const reason = await foreignSplit(outputDir, present, splitNames, manifest);
  if (reason) throw notOursError(label, `a split written by \`malaria build-dataset\``, reason);
  return present;
}
