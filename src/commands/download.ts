// `malaria download`: fetch cell_images.zip (resumable) and extract it to <dir>/cell_images/<Class>/.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';
import type { Command } from '@commander-js/extra-typings';
import { DOWNLOAD_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import { downloadWithResume } from '../data/download.js';
import { extractCellImages, type ExtractResult } from '../data/unzip.js';
import { ProgressBar } from '../report/progress.js';
import { createReporter } from '../report/reporter.js';

export interface DownloadFlags {
  url: string;
  dir: string;
  force: boolean;
}

export interface DownloadRunOptions {
  /** Where progress bars go; none when undefined. */
  progressStream?: NodeJS.WriteStream;
  /** Receives the summary lines (stdout in the CLI). */
  log?: (line: string) => void;
  /** Receives warnings (stderr in the CLI). */
  warn?: (line: string) => void;
  expectedImages?: number;
}

export const ARCHIVE_NAME = 'cell_images.zip';
export const IMAGES_FOLDER = 'cell_images';

function checkUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`--url ${url} is not a URL; pass an http(s) address such as ${DOWNLOAD_DEFAULTS.url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UserError(`--url ${url} uses ${parsed.protocol.replace(/:$/, '')}; pass an http:// or https:// address`);
  }
}

const megabytes = (bytes: number): number => Math.round(bytes / 1e6);
const count = (n: number): string => n.toLocaleString('en-US');

function describeSkipped(result: ExtractResult): string[] {
  const lines: string[] = [];
  const sample = (names: string[]): string => {
    const base = [...new Set(names.map((name) => path.posix.basename(name)))];
    return base.slice(0, 3).join(', ') + (base.length > 3 ? ', ...' : '');
  };
  if (result.nonImages.length > 0) lines.push(`skipped ${count(result.nonImages.length)} non-image entries (${sample(result.nonImages)})`);
  if (result.duplicates.length > 0) {
    lines.push(`skipped ${count(result.duplicates.length)} duplicate images (same class, file name and bytes as one already extracted: the nested copy)`);
  }
  if (result.unlabelled.length > 0) {
    lines.push(`skipped ${count(result.unlabelled.length)} images outside any class folder (${sample(result.unlabelled)})`);
  }
  if (result.renamed.length > 0) {
    lines.push(`kept ${count(result.renamed.length)} images whose class and file name clash with a different image under a numbered name (<name>-2.png)`);
  }
  return lines;
}

/** Downloads (unless the archive is already there) and extracts; returns what the extraction found. */
export async function runDownload(flags: DownloadFlags, options: DownloadRunOptions = {}): Promise<ExtractResult> {
  const log = options.log ?? (() => undefined);
  const warn = options.warn ?? log;
  checkUrl(flags.url);
  const archive = path.join(flags.dir, ARCHIVE_NAME);
  const imagesDir = path.join(flags.dir, IMAGES_FOLDER);
  if ((await fse.pathExists(imagesDir)) && !flags.force) {
    throw new UserError(`${imagesDir} already exists; pass --force to extract the archive over it again`);
  }
  await fsp.mkdir(flags.dir, { recursive: true });

  if (await fse.pathExists(archive)) {
    log(`using ${archive}, downloaded earlier (delete it to download again)`);
  } else {
    let bar: ProgressBar | undefined;
    const result = await downloadWithResume({
      url: flags.url,
      dest: archive,
      onStart: (offset, total) => {
        if (options.progressStream && total) {
          bar = new ProgressBar({ total: megabytes(total), label: 'downloading (MB)', stream: options.progressStream });
          bar.update(megabytes(offset));
        }
      },
      onProgress: (bytes) => bar?.update(megabytes(bytes)),
    });
    bar?.finish();
    const resumed = result.resumedFrom > 0 ? ` (resumed after ${megabytes(result.resumedFrom)} MB)` : '';
    const restarted = result.restarted ? ' (the server could not resume, so it started over)' : '';
    log(`downloaded ${flags.url} to ${archive}: ${megabytes(result.bytes)} MB${resumed}${restarted}`);
  }

  let bar: ProgressBar | undefined;
  const extracted = await extractCellImages(archive, imagesDir, {
    force: flags.force,
    onStart: (entries) => {
      if (options.progressStream) bar = new ProgressBar({ total: entries, label: 'extracting', stream: options.progressStream });
    },
    onProgress: () => bar?.tick(),
  });
  bar?.finish();
  const perClass = Object.entries(extracted.perClass)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, count]) => `${name} ${count.toLocaleString('en-US')}`)
    .join(', ');
  log(`extracted ${extracted.images.toLocaleString('en-US')} images to ${imagesDir}${perClass ? ` (${perClass})` : ''}`);
  for (const line of describeSkipped(extracted)) log(line);
  const expected = options.expectedImages ?? DOWNLOAD_DEFAULTS.expectedImages;
  if (extracted.images !== expected) {
    warn(
      `warning: expected ${expected.toLocaleString('en-US')} images (the official NIH archive) but found ${extracted.images.toLocaleString('en-US')}; check that ${flags.url} serves the full data set`,
    );
  }
  return extracted;
}

export function registerDownload(program: Command): void {
  program
    .command('download')
    .description(`download ${ARCHIVE_NAME} (resumable) and extract it to <dir>/${IMAGES_FOLDER}/<Class>/`)
    .option('--url <url>', 'where to fetch the archive', DOWNLOAD_DEFAULTS.url as string)
    .option('--dir <dir>', `folder that receives ${ARCHIVE_NAME} and ${IMAGES_FOLDER}/`, DOWNLOAD_DEFAULTS.dir as string)
    .option('--force', `extract again over an existing <dir>/${IMAGES_FOLDER}`, false)
    .action(async (flags) => {
      const report = createReporter();
      await runDownload(flags, { progressStream: process.stderr, log: report.result, warn: report.note });
    });
}
