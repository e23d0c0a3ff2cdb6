// `malaria build-dataset`: list and check the raw class folders, split them (per cell or per patient)
// and copy them into <output>/{training,validation,testing}/<Class>/ with a splits.csv manifest.
// Everything is written into a temporary folder beside the target and renamed into place at the end,
// so an interrupted run never leaves a half-written split where training would pick it up.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';
import { DATASET_DEFAULTS, type SplitName } from '../config.js';
import { UserError, asWriteError } from '../errors.js';
import { csvLine } from '../io/csv.js';
import { DecodeError, decodeRgb } from '../input/decode.js';
import {
  listDataset,
  type DatasetListing,
  type DuplicateImage,
  type ListedImage,
  type RejectedFile,
} from './find-images.js';
import { mapLimit } from '../io/map-limit.js';
import { patientIdOf, splitByPatient } from './patients.js';
import { compareSplitItems, compareStrings, splitByCell, type SplitAssignment } from './split.js';
import {
  SWAP_IN_PROGRESS,
  isProcessAlive,
  parseTempName,
  sweepLeftovers,
  syncFolder,
  tempPath,
  writeFileSynced,
} from '../io/atomic.js';
import {
  REJECTED_MANIFEST,
  REJECTED_MANIFEST_HEADER,
  SPLIT_MANIFEST,
  SPLIT_MANIFEST_HEADER,
  assertApart,
  existingSplitEntries,
  realPathAllowMissing,
  splitCopyName,
} from '../io/output-folder.js';

export type GroupBy = 'cell' | 'patient';

export interface BuildDatasetOptions {
  input: string;
  output: string;
  trainSplit: number;
  valSplit: number;
  seed: number;
  force: boolean;
  groupBy: GroupBy;
  /** Files read/decoded/copied at once (the machine this was written for has 2 cores). */
  concurrency?: number;
  /** Starts a progress bar of `total` steps (the CLI's reporter draws them); none when undefined (tests, libraries). */
  progress?: (total: number, label: string) => Progress;
}

/** What the build tells a progress bar. */
export interface Progress {
  tick(): void;
  finish(): void;
}

export const SPLIT_NAMES: readonly SplitName[] = [
  DATASET_DEFAULTS.splits.train,
  DATASET_DEFAULTS.splits.val,
  DATASET_DEFAULTS.splits.test,
];
const MANIFEST_FILE = SPLIT_MANIFEST;
const REJECTED_FILE = REJECTED_MANIFEST;
/** Everything a run writes into the output folder; an existing one is only ever replaced with --force. */
const OUTPUT_ENTRIES = [...SPLIT_NAMES, MANIFEST_FILE, REJECTED_FILE];
/** What the run's temporary folder (`<output>/.split.malaria-tmp-<pid>-<hex>`) stands for (src/io/atomic.ts). */
const TEMP_BASE = 'split';
const isOurTemp = (name: string): boolean => parseTempName(name)?.base === TEMP_BASE;
/** Inside a temp folder: where the previous output waits while the new one is moved into place. */
const REPLACED_DIR = SWAP_IN_PROGRESS;
/** The order new entries are moved into place: split folders first, the manifest last. */
const SWAP_ORDER = [...SPLIT_NAMES, REJECTED_FILE, MANIFEST_FILE];

export interface BuildDatasetResult {
  input: string;
  output: string;
  groupBy: GroupBy;
  classNames: string[];
  /** Images per split and class. */
  counts: Record<SplitName, Record<string, number>>;
  /** Distinct patients per split (patient grouping only). */
  patients?: Record<SplitName, number>;
  /** Files without a patient id, each split as a group of one (patient grouping only). */
  withoutPatientId?: number;
  nonImages: string[];
  unlabelled: string[];
  duplicates: DuplicateImage[];
  rejected: RejectedFile[];
  notFollowed: string[];
  manifestPath: string;
  rejectedPath?: string;
  /** Output entries of an earlier run that --force replaced. */
  replaced: string[];
  /** Temporary folders of interrupted earlier runs that were deleted. */
  removedLeftovers: string[];
  /** Temporary folders of runs killed while moving their complete split into place, whose move was finished. */
  finishedSwaps: string[];
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch {
    return false;
  }
}

async function checkPaths(options: BuildDatasetOptions): Promise<{ inputDir: string; outputDir: string }> {
  let inputDir: string;
  try {
    inputDir = await fsp.realpath(options.input);
  } catch {
    throw new UserError(
      `input folder ${options.input} not found; run \`malaria download\` to fetch the images or pass --input <folder with Parasitized/ and Uninfected/>`,
    );
  }
  if (!(await fsp.stat(inputDir)).isDirectory()) {
    throw new UserError(
      `--input ${options.input} is a file, not a folder; pass the folder that holds the class folders`,
    );
  }
  const outputDir = await realPathAllowMissing(options.output);
  if ((await exists(outputDir)) && !(await fsp.stat(outputDir)).isDirectory()) {
    throw new UserError(`--output ${options.output} is a file, not a folder; pass a folder for the split`);
  }
  // The output folder may hold the input (malaria/cell_images in malaria/): what must stay apart is what this
  // command writes there (and replaces with --force) and the input.
  const written = OUTPUT_ENTRIES.map((entry) => ({
    path: path.join(outputDir, entry),
    label: `${path.join(options.output, entry)} (written by this command)`,
  }));
  await assertApart(written, [{ path: inputDir, label: `--input ${options.input}` }]);
  return { inputDir, outputDir };
}

/**
 * The split entries the output holds, which a run replaces: only a split this command wrote (checked against its
 * splits.csv) may be replaced, and only with --force.
 */
async function refuseOrPlanReplacement(outputDir: string, options: BuildDatasetOptions): Promise<string[]> {
  const existing = await existingSplitEntries(outputDir, OUTPUT_ENTRIES, SPLIT_NAMES, `--output ${options.output}`);
  if (existing.length > 0 && !options.force) {
    throw new UserError(
      `${options.output} already holds a split (${existing.join(', ')}); pass --force to replace it with a new one`,
    );
  }
  return existing;
}

function progressBar(options: BuildDatasetOptions, total: number, label: string): Progress | undefined {
  return total > 0 ? options.progress?.(total, label) : undefined;
}

/** Decodes every image once (bounded concurrency); the ones that fail are returned with the reason. */
async function findUndecodable(
  images: readonly ListedImage[],
  options: BuildDatasetOptions,
): Promise<Map<ListedImage, string>> {
  const bar = progressBar(options, images.length, 'checking');
  const failures = new Map<ListedImage, string>();
  await mapLimit(images, options.concurrency ?? 8, async (image) => {
    try {
      await decodeRgb(image.absolutePath, image.relativePath);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      failures.set(image, err.message.slice(err.file.length + 2));
    }
    bar?.tick();
  });
  bar?.finish();
  return failures;
}

async function writeSplit(
  assignment: SplitAssignment<ListedImage>,
  classNames: readonly string[],
  tempDir: string,
  options: BuildDatasetOptions,
): Promise<void> {
  const copies: { from: string; to: string }[] = [];
  let manifest = csvLine(SPLIT_MANIFEST_HEADER);
  for (const split of SPLIT_NAMES) {
    for (const className of classNames) await fsp.mkdir(path.join(tempDir, split, className), { recursive: true });
    const namesTaken = new Map<string, Set<string>>(classNames.map((name) => [name, new Set<string>()]));
    for (const image of [...assignment[split]].sort(compareSplitItems)) {
      // The copy's name follows from the manifest's rows in order: the ownership check names them the same way.
      const name = splitCopyName(image.name, image.sha256, namesTaken.get(image.className)!);
      copies.push({ from: image.absolutePath, to: path.join(tempDir, split, image.className, name) });
      const row = [split, image.className, image.relativePath, image.sha256, patientIdOf(image.name) ?? ''];
      // The size lets the ownership check tell a copy from another image of the same name without reading it.
      manifest += csvLine([...row, String(image.size)]);
    }
  }
  const bar = progressBar(options, copies.length, 'copying');
  await mapLimit(copies, options.concurrency ?? 8, async ({ from, to }) => {
    // fs-extra's copy keeps the original modification times, so the copies are traceable to the source.
    await fse.copy(from, to, { preserveTimestamps: true, overwrite: false, errorOnExist: true, dereference: true });
    bar?.tick();
  });
  bar?.finish();
  // Flushed: the manifest is what makes the split ours and is the record of which image went where.
  await writeFileSynced(path.join(tempDir, MANIFEST_FILE), manifest);
}

/** Moves the old output into the temp folder, the new one into place, then deletes the temp folder. */
async function swapIntoPlace(
  tempDir: string,
  outputDir: string,
  existing: readonly string[],
  newEntries: readonly string[],
): Promise<void> {
  const trash = path.join(tempDir, REPLACED_DIR);
  await fsp.mkdir(trash);
  for (const entry of existing) await fsp.rename(path.join(outputDir, entry), path.join(trash, entry));
  // Split folders first, the manifest last: a reader that finds splits.csv finds the folders it describes.
  for (const entry of SWAP_ORDER.filter((e) => newEntries.includes(e)))
    await fsp.rename(path.join(tempDir, entry), path.join(outputDir, entry));
  await syncFolder(outputDir);
  await fse.remove(tempDir);
}

/** A run killed inside swapIntoPlace: its temp folder, holding `.replaced/` and the new entries not yet moved in. */
interface InterruptedSwap {
  name: string;
  tempDir: string;
  /** New entries still in the temp folder, in SWAP_ORDER. */
  pending: string[];
  /** New entries had begun to move in, which happens only once every old one is out. */
  movingIn: boolean;
}

/**
 * The swaps killed runs left in `outputDir` (read only). Their new split was complete (the swap starts after the
 * last copy), so the next run finishes the move: the output then holds that complete split, never a mix of two.
 */
async function interruptedSwaps(outputDir: string): Promise<InterruptedSwap[]> {
  const names = await fsp.readdir(outputDir).catch(() => [] as string[]);
  const swaps: InterruptedSwap[] = [];
  for (const name of names.sort()) {
    const pid = isOurTemp(name) ? parseTempName(name)?.pid : undefined;
    if (!pid || pid === process.pid || isProcessAlive(pid)) continue;
    const tempDir = path.join(outputDir, name);
    if (!(await exists(path.join(tempDir, REPLACED_DIR)))) continue;
    const pending: string[] = [];
    for (const entry of SWAP_ORDER) if (await exists(path.join(tempDir, entry))) pending.push(entry);
    swaps.push({ name, tempDir, pending, movingIn: SPLIT_NAMES.some((split) => !pending.includes(split)) });
  }
  return swaps;
}

/**
 * The manifest that lists the split entries an unfinished swap left in the output: the output's own splits.csv
 * while it is there (old entries not yet moved out, or the new split wholly moved in); else the new one in the
 * temp folder once entries move in, or the old one in `.replaced/` before.
 */
async function swapManifest(outputDir: string, swap: InterruptedSwap): Promise<string> {
  const inOutput = path.join(outputDir, MANIFEST_FILE);
  if (await exists(inOutput)) return inOutput;
  return path.join(swap.movingIn ? swap.tempDir : path.join(swap.tempDir, REPLACED_DIR), MANIFEST_FILE);
}

/** Finishes the move of an interrupted swap whose entries in the output were checked as ours. */
async function finishSwap(outputDir: string, { tempDir, pending, movingIn }: InterruptedSwap): Promise<void> {
  const trash = path.join(tempDir, REPLACED_DIR);
  // While no split folder has moved in, all that the output holds is old; afterwards only names still pending
  // can hold an old entry.
  for (const entry of SWAP_ORDER) {
    const current = path.join(outputDir, entry);
    if ((pending.includes(entry) || !movingIn) && (await exists(current))) {
      await fse.move(current, path.join(trash, entry), { overwrite: true });
    }
  }
  for (const entry of pending) await fsp.rename(path.join(tempDir, entry), path.join(outputDir, entry));
  await fse.remove(tempDir);
}

export async function buildDataset(options: BuildDatasetOptions): Promise<BuildDatasetResult> {
  const { inputDir, outputDir } = await checkPaths(options);
  // Nothing changes before the output is checked: an interrupted swap of ours is finished only once what it left
  // in the output is found to be the split its manifest lists.
  const finishedSwaps: string[] = [];
  for (const swap of await interruptedSwaps(outputDir)) {
    const manifest = await swapManifest(outputDir, swap);
    await existingSplitEntries(outputDir, OUTPUT_ENTRIES, SPLIT_NAMES, `--output ${options.output}`, manifest);
    await finishSwap(outputDir, swap);
    finishedSwaps.push(swap.name);
  }
  // Refused here, before the long work, and checked again before the swap (below).
  await refuseOrPlanReplacement(outputDir, options);
  const { removed: removedLeftovers } = await sweepLeftovers(outputDir, [TEMP_BASE]);

  const excluded = new Set(SPLIT_NAMES.map((split) => path.join(outputDir, split)));
  let scanBar: Progress | undefined;
  const listing: DatasetListing = await listDataset(inputDir, {
    concurrency: options.concurrency,
    exclude: (dir) => excluded.has(dir) || (path.dirname(dir) === outputDir && isOurTemp(path.basename(dir))),
    onStart: (total) => (scanBar = progressBar(options, total, 'scanning')),
    onProgress: () => scanBar?.tick(),
  });
  scanBar?.finish();

  const undecodable = await findUndecodable(listing.images, options);
  const rejected = [
    ...listing.rejected,
    ...[...undecodable].map(([image, reason]) => ({ relativePath: image.relativePath, reason })),
  ].sort((a, b) => compareStrings(a.relativePath, b.relativePath));
  const images = listing.images.filter((image) => !undecodable.has(image));
  const classNames = [...new Set(images.map((image) => image.className))].sort(compareStrings);
  if (classNames.length === 0) {
    throw new UserError(
      `no class folders with images in ${options.input}; expected ${path.join(options.input, '<Class>', '<image>')}, for example Parasitized/ and Uninfected/ (run \`malaria download\` to fetch them)`,
    );
  }
  if (classNames.length === 1) {
    throw new UserError(
      `only one class folder with images in ${options.input} (${classNames[0]}); a classifier needs at least two, for example Parasitized/ and Uninfected/`,
    );
  }

  const fractions = { trainSplit: options.trainSplit, valSplit: options.valSplit, seed: options.seed };
  const patientSplit = options.groupBy === 'patient' ? splitByPatient(images, fractions) : undefined;
  const assignment: SplitAssignment<ListedImage> = patientSplit ?? splitByCell(images, fractions);

  const tempDir = tempPath(path.join(outputDir, TEMP_BASE));
  await fsp.mkdir(tempDir, { recursive: true });
  const newEntries: string[] = [...SPLIT_NAMES];
  let existing: string[];
  try {
    await writeSplit(assignment, classNames, tempDir, options);
    if (rejected.length > 0) {
      const lines = [csvLine(REJECTED_MANIFEST_HEADER), ...rejected.map((r) => csvLine([r.relativePath, r.reason]))];
      await fsp.writeFile(path.join(tempDir, REJECTED_FILE), lines.join(''));
      newEntries.push(REJECTED_FILE);
    }
    newEntries.push(MANIFEST_FILE);
    // Checked again before anything in the output moves: the copying leaves time for someone to change it.
    existing = await refuseOrPlanReplacement(outputDir, options);
    await swapIntoPlace(tempDir, outputDir, existing, newEntries);
  } catch (err) {
    // Once the swap has begun, the temp folder holds the old entries: keep it for the next run to finish the swap.
    if (!(await exists(path.join(tempDir, REPLACED_DIR)))) await fse.remove(tempDir).catch(() => undefined);
    // A full disk fails on whichever file was being copied; name the output, which is what needs space.
    throw asWriteError(err, `cannot write the split into ${options.output}`);
  }

  const counts = Object.fromEntries(
    SPLIT_NAMES.map((split) => {
      const perClass: Record<string, number> = Object.fromEntries(classNames.map((name) => [name, 0]));
      for (const image of assignment[split]) perClass[image.className]++;
      return [split, perClass];
    }),
  ) as Record<SplitName, Record<string, number>>;

  return {
    input: options.input,
    output: options.output,
    groupBy: options.groupBy,
    classNames,
    counts,
    patients: patientSplit?.patients,
    withoutPatientId: patientSplit?.withoutId,
    nonImages: listing.nonImages,
    unlabelled: listing.unlabelled,
    duplicates: listing.duplicates,
    rejected,
    notFollowed: listing.notFollowed,
    manifestPath: path.join(options.output, MANIFEST_FILE),
    rejectedPath: rejected.length > 0 ? path.join(options.output, REJECTED_FILE) : undefined,
    replaced: existing,
    removedLeftovers,
    finishedSwaps,
  };
}
