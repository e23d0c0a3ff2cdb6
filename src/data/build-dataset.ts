// `malaria build-dataset`: list and check the raw class folders, split them (per cell or per patient)
// and copy them into <output>/{training,validation,testing}/<Class>/ with a splits.csv manifest.
// Everything is written into a temporary folder beside the target and renamed into place at the end,
// so an interrupted run never leaves a half-written split where training would pick it up.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';
import { DATASET_DEFAULTS, type SplitName } from '../config.js';
import { UserError } from '../errors.js';
import { ProgressBar } from '../report/progress.js';
import { csvLine } from './csv.js';
import { DecodeError, decodeRgb } from './decode.js';
import { listDataset, type DatasetListing, type DuplicateImage, type ListedImage, type RejectedFile } from './listing.js';
import { mapLimit } from './map-limit.js';
import { patientIdOf, splitByPatient } from './patients.js';
import { compareSplitItems, compareStrings, splitByCell, type SplitAssignment } from './split.js';

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
  /** Where to draw progress bars; none when undefined (tests, libraries). */
  progressStream?: NodeJS.WriteStream;
}

export const SPLIT_NAMES: readonly SplitName[] = [DATASET_DEFAULTS.splits.train, DATASET_DEFAULTS.splits.val, DATASET_DEFAULTS.splits.test];
export const MANIFEST_FILE = 'splits.csv';
export const REJECTED_FILE = 'rejected.csv';
/** Everything a run writes into the output folder; an existing one is only ever replaced with --force. */
const OUTPUT_ENTRIES = [...SPLIT_NAMES, MANIFEST_FILE, REJECTED_FILE];
const TEMP_PATTERN = /^\.build-dataset-(\d+)-tmp$/;

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
}

/** True when `child` is `parent` or lies somewhere below it. */
export function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}

/** realpath of the longest existing ancestor plus the rest, so a not-yet-created output compares correctly. */
async function realPathAllowMissing(target: string): Promise<string> {
  const absolute = path.resolve(target);
  try {
    return await fsp.realpath(absolute);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const parent = path.dirname(absolute);
    if (parent === absolute) return absolute;
    return path.join(await realPathAllowMissing(parent), path.basename(absolute));
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch {
    return false;
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes `.build-dataset-<pid>-tmp` folders whose process is gone (runs that were interrupted). */
async function removeLeftoverTemps(outputDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await fsp.readdir(outputDir)) {
    const match = TEMP_PATTERN.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid && isProcessAlive(pid)) continue; // another run is working right now
    await fse.remove(path.join(outputDir, name));
    removed.push(name);
  }
  return removed;
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
    throw new UserError(`--input ${options.input} is a file, not a folder; pass the folder that holds the class folders`);
  }
  const outputDir = await realPathAllowMissing(options.output);
  if ((await exists(outputDir)) && !(await fsp.stat(outputDir)).isDirectory()) {
    throw new UserError(`--output ${options.output} is a file, not a folder; pass a folder for the split`);
  }
  for (const split of SPLIT_NAMES) {
    const splitDir = path.join(outputDir, split);
    if (isInside(splitDir, inputDir)) {
      throw new UserError(
        `--output ${options.output} would put the split inside the input ${options.input}, which must stay untouched; choose an --output outside the input`,
      );
    }
    if (isInside(inputDir, splitDir)) {
      throw new UserError(
        `the input ${options.input} lies inside ${path.join(options.output, split)}, which this command replaces; move the class folders elsewhere or choose another --output`,
      );
    }
  }
  return { inputDir, outputDir };
}

async function refuseOrPlanReplacement(outputDir: string, options: BuildDatasetOptions): Promise<string[]> {
  const existing: string[] = [];
  for (const entry of OUTPUT_ENTRIES) if (await exists(path.join(outputDir, entry))) existing.push(entry);
  if (existing.length > 0 && !options.force) {
    throw new UserError(
      `${options.output} already holds a split (${existing.join(', ')}); pass --force to replace it with a new one`,
    );
  }
  return existing;
}

function progressBar(options: BuildDatasetOptions, total: number, label: string): ProgressBar | undefined {
  return options.progressStream && total > 0 ? new ProgressBar({ total, label, stream: options.progressStream }) : undefined;
}

/** Decodes every image once (bounded concurrency); the ones that fail are returned with the reason. */
async function findUndecodable(images: readonly ListedImage[], options: BuildDatasetOptions): Promise<Map<ListedImage, string>> {
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

/** `<stem>-<hash8><ext>` when two different images of one split and class share a file name. */
function uniqueName(image: ListedImage, taken: Set<string>): string {
  let name = image.name;
  if (taken.has(name.toLowerCase())) {
    const ext = path.extname(name);
    name = `${name.slice(0, name.length - ext.length)}-${image.sha256.slice(0, 8)}${ext}`;
  }
  taken.add(name.toLowerCase());
  return name;
}

async function writeSplit(
  assignment: SplitAssignment<ListedImage>,
  classNames: readonly string[],
  tempDir: string,
  options: BuildDatasetOptions,
): Promise<void> {
  const copies: { from: string; to: string }[] = [];
  let manifest = csvLine(['split', 'label', 'file', 'sha256', 'patient']);
  for (const split of SPLIT_NAMES) {
    for (const className of classNames) await fsp.mkdir(path.join(tempDir, split, className), { recursive: true });
    const namesTaken = new Map<string, Set<string>>(classNames.map((name) => [name, new Set<string>()]));
    for (const image of [...assignment[split]].sort(compareSplitItems)) {
      const name = uniqueName(image, namesTaken.get(image.className)!);
      copies.push({ from: image.absolutePath, to: path.join(tempDir, split, image.className, name) });
      manifest += csvLine([split, image.className, image.relativePath, image.sha256, patientIdOf(image.name) ?? '']);
    }
  }
  const bar = progressBar(options, copies.length, 'copying');
  await mapLimit(copies, options.concurrency ?? 8, async ({ from, to }) => {
    // fs-extra's copy keeps the original modification times, so the copies are traceable to the source.
    await fse.copy(from, to, { preserveTimestamps: true, overwrite: false, errorOnExist: true, dereference: true });
    bar?.tick();
  });
  bar?.finish();
  await fsp.writeFile(path.join(tempDir, MANIFEST_FILE), manifest);
}

/** Moves the old output into the temp folder, the new one into place, then deletes the temp folder. */
async function swapIntoPlace(tempDir: string, outputDir: string, existing: readonly string[], newEntries: readonly string[]): Promise<void> {
  const trash = path.join(tempDir, '.replaced');
  await fsp.mkdir(trash);
  for (const entry of existing) await fsp.rename(path.join(outputDir, entry), path.join(trash, entry));
  // Split folders first, the manifest last: a reader that finds splits.csv finds the folders it describes.
  for (const entry of newEntries) await fsp.rename(path.join(tempDir, entry), path.join(outputDir, entry));
  await fse.remove(tempDir);
}

export async function buildDataset(options: BuildDatasetOptions): Promise<BuildDatasetResult> {
  const { inputDir, outputDir } = await checkPaths(options);
  const existing = await refuseOrPlanReplacement(outputDir, options);
  const removedLeftovers = (await exists(outputDir)) ? await removeLeftoverTemps(outputDir) : [];

  const excluded = new Set(SPLIT_NAMES.map((split) => path.join(outputDir, split)));
  let scanBar: ProgressBar | undefined;
  const listing: DatasetListing = await listDataset(inputDir, {
    concurrency: options.concurrency,
    exclude: (dir) => excluded.has(dir) || (path.dirname(dir) === outputDir && TEMP_PATTERN.test(path.basename(dir))),
    onStart: (total) => (scanBar = progressBar(options, total, 'scanning')),
    onProgress: () => scanBar?.tick(),
  });
  scanBar?.finish();

  const undecodable = await findUndecodable(listing.images, options);
  const rejected = [...listing.rejected, ...[...undecodable].map(([image, reason]) => ({ relativePath: image.relativePath, reason }))].sort(
    (a, b) => compareStrings(a.relativePath, b.relativePath),
  );
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

  const tempDir = path.join(outputDir, `.build-dataset-${process.pid}-tmp`);
  await fse.remove(tempDir);
  await fsp.mkdir(tempDir, { recursive: true });
  const newEntries: string[] = [...SPLIT_NAMES];
  try {
    await writeSplit(assignment, classNames, tempDir, options);
    if (rejected.length > 0) {
      const lines = [csvLine(['file', 'reason']), ...rejected.map((r) => csvLine([r.relativePath, r.reason]))];
      await fsp.writeFile(path.join(tempDir, REJECTED_FILE), lines.join(''));
      newEntries.push(REJECTED_FILE);
    }
    newEntries.push(MANIFEST_FILE);
    await swapIntoPlace(tempDir, outputDir, existing, newEntries);
  } catch (err) {
    await fse.remove(tempDir).catch(() => undefined);
    throw err;
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
  };
}

const formatCount = (n: number): string => n.toLocaleString('en-US');

/** Up to three examples, then "...": enough to recognise Thumbs.db without flooding the terminal. */
function examples(paths: readonly string[]): string {
  const shown = paths.slice(0, 3).join(', ');
  return paths.length > 3 ? `${shown}, ...` : shown;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${formatCount(n)} ${n === 1 ? one : many}`;

/** The summary table (counts per split and class, balance, patients) and one line per thing set aside. */
export function formatBuildSummary(result: BuildDatasetResult): string[] {
  const { classNames, counts } = result;
  const header = ['split', ...classNames, 'total', 'balance', ...(result.patients ? ['patients'] : [])];
  const rows: string[][] = [];
  const totals: Record<string, number> = Object.fromEntries(classNames.map((name) => [name, 0]));
  const balance = (perClass: Record<string, number>, total: number): string =>
    classNames.map((name) => (total > 0 ? `${((100 * perClass[name]) / total).toFixed(1)}%` : '-')).join(' / ');
  for (const split of SPLIT_NAMES) {
    const perClass = counts[split];
    const total = classNames.reduce((sum, name) => sum + perClass[name], 0);
    for (const name of classNames) totals[name] += perClass[name];
    rows.push([split, ...classNames.map((name) => formatCount(perClass[name])), formatCount(total), balance(perClass, total), ...(result.patients ? [formatCount(result.patients[split])] : [])]);
  }
  const grandTotal = classNames.reduce((sum, name) => sum + totals[name], 0);
  const patientTotal = result.patients ? SPLIT_NAMES.reduce((sum, split) => sum + result.patients![split], 0) : 0;
  rows.push(['total', ...classNames.map((name) => formatCount(totals[name])), formatCount(grandTotal), balance(totals, grandTotal), ...(result.patients ? [formatCount(patientTotal)] : [])]);
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i].length)));
  const format = (row: string[]): string => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();

  const lines = [
    `found ${plural(grandTotal, 'usable image')} in ${classNames.length} classes (${classNames.join(', ')}) under ${result.input}`,
  ];
  if (result.nonImages.length > 0) lines.push(`skipped ${plural(result.nonImages.length, 'non-image file')} (${examples(result.nonImages)})`);
  if (result.unlabelled.length > 0) {
    lines.push(`skipped ${plural(result.unlabelled.length, 'image')} lying directly in the input folder, outside any class folder (${examples(result.unlabelled)})`);
  }
  if (result.duplicates.length > 0) {
    const crossClass = result.duplicates.filter((d) => d.crossClass).length;
    lines.push(
      `dropped ${plural(result.duplicates.length, 'duplicate image')} (identical bytes; kept the first copy by path)${crossClass > 0 ? `, ${formatCount(crossClass)} of them filed under a different class than the copy kept` : ''}`,
    );
  }
  if (result.rejected.length > 0) {
    lines.push(`set aside ${plural(result.rejected.length, 'file')} that do not decode as images (reasons in ${result.rejectedPath}; not copied)`);
  }
  if (result.notFollowed.length > 0) lines.push(`did not follow ${plural(result.notFollowed.length, 'folder link or special file', 'folder links or special files')} (${examples(result.notFollowed)})`);
  if (result.removedLeftovers.length > 0) lines.push(`removed ${plural(result.removedLeftovers.length, 'temporary folder')} left by an interrupted run`);
  if (result.patients) {
    lines.push(
      `grouped by patient: no patient has images in two splits${result.withoutPatientId ? `; ${plural(result.withoutPatientId, 'file')} without a patient id in the name, each kept as a group of one` : ''}`,
    );
  }
  lines.push('', format(header), ...rows.map(format), '');
  for (const split of SPLIT_NAMES) {
    if (classNames.every((name) => counts[split][name] === 0)) {
      lines.push(`warning: ${split} is empty; use more images${result.patients ? ' (or patients)' : ''} or other --train-split/--val-split values`);
    }
  }
  const replaced = result.replaced.length > 0 ? ` (replaced the previous ${result.replaced.join(', ')})` : '';
  lines.push(`wrote ${SPLIT_NAMES.map((split) => path.join(result.output, split)).join(', ')} and ${result.manifestPath}${replaced}`);
  return lines;
}
