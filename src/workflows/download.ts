// `malaria download`'s work: fetch cell_images.zip (resumable) and extract it to <dir>/cell_images/<Class>/.
import path from 'node:path';
import fse from 'fs-extra';
import { DOWNLOAD_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import type { ProgressBar } from '../report/progress.js';
import { silentReporter, type Reporter } from '../report/reporter.js';
import { downloadWithResume } from '../dataset/download.js';
import { extractCellImages, type ExtractResult } from '../dataset/unzip.js';

export interface DownloadDatasetOptions {
  /** The archive's address. */
  url: string;
  /** Folder that receives the archive and its extraction. */
  dir: string;
  /** Extract again over an extraction of ours. */
  force: boolean;
  /** Images the archive should hold (default: the official NIH archive's); a different count is a warning. */
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
  if (result.nonImages.length > 0)
    lines.push(`skipped ${count(result.nonImages.length)} non-image entries (${sample(result.nonImages)})`);
  if (result.duplicates.length > 0) {
    lines.push(
      `skipped ${count(result.duplicates.length)} duplicate images (same class, file name and bytes as one already extracted: the nested copy)`,
    );
  }
  if (result.unlabelled.length > 0) {
    lines.push(
      `skipped ${count(result.unlabelled.length)} images outside any class folder (${sample(result.unlabelled)})`,
    );
  }
  if (result.renamed.length > 0) {
    lines.push(
      `kept ${count(result.renamed.length)} images whose class and file name clash with a different image under a numbered name (<name>-2.png)`,
    );
  }
  return lines;
}

/**
 * Downloads (unless the archive is already there) and extracts; returns what the extraction found. Its summary is
 * `report`'s result, warnings are notes, progress bars go to `report.progress`.
 */
export async function downloadDataset(
  flags: DownloadDatasetOptions,
  report: Reporter = silentReporter,
): Promise<ExtractResult> {
  checkUrl(flags.url);
  const archive = path.join(flags.dir, ARCHIVE_NAME);
  const imagesDir = path.join(flags.dir, IMAGES_FOLDER);
  if ((await fse.pathExists(imagesDir)) && !flags.force) {
    throw new UserError(`${imagesDir} already exists; pass --force to extract the archive over it again`);
  }
  // No mkdir here: the download makes the folder once a server sends the file, so a refused one leaves none.
  if (await fse.pathExists(archive)) {
    report.result(`using ${archive}, downloaded earlier (delete it to download again)`);
  } else {
    let bar: ProgressBar | undefined;
    const result = await downloadWithResume({
      url: flags.url,
      dest: archive,
      onStart: (offset, total) => {
        if (total) {
          bar = report.progress({ total: megabytes(total), label: 'downloading (MB)' });
          bar.update(megabytes(offset));
        }
      },
      onProgress: (bytes) => bar?.update(megabytes(bytes)),
    });
    bar?.finish();
    const resumed = result.resumedFrom > 0 ? ` (resumed after ${megabytes(result.resumedFrom)} MB)` : '';
    const restarted = result.restarted ? ' (the server could not resume, so it started over)' : '';
    report.result(`downloaded ${flags.url} to ${archive}: ${megabytes(result.bytes)} MB${resumed}${restarted}`);
  }

  let bar: ProgressBar | undefined;
  const extracted = await extractCellImages(archive, imagesDir, {
    force: flags.force,
    onStart: (entries) => {
      bar = report.progress({ total: entries, label: 'extracting' });
    },
    onProgress: () => bar?.tick(),
  });
  bar?.finish();
  const perClass = Object.entries(extracted.perClass)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, count]) => `${name} ${count.toLocaleString('en-US')}`)
    .join(', ');
  report.result(
    `extracted ${extracted.images.toLocaleString('en-US')} images to ${imagesDir}${perClass ? ` (${perClass})` : ''}`,
  );
  for (const line of describeSkipped(extracted)) report.result(line);
  const expected = flags.expectedImages ?? DOWNLOAD_DEFAULTS.expectedImages;
  if (extracted.images !== expected) {
    report.note(
      `warning: expected ${expected.toLocaleString('en-US')} images (the official NIH archive) but found ${extracted.images.toLocaleString('en-US')}; check that ${flags.url} serves the full data set`,
    );
  }
  return extracted;
}
