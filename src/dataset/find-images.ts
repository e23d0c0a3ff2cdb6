// Finds the labelled images under an input folder: class = the folder that directly holds the file,
// images recognised by content, identical copies (the Kaggle mirror's nested duplicate) kept once.
import {
  classifyFile,
  readHeader,
  sha256File,
  walkFiles,
  type ImageFormat,
  type WalkOptions,
} from '../io/image-files.js';
import { mapLimit } from '../io/map-limit.js';
import { compareStrings } from './split.js';

/** An image file the data set keeps. */
export interface ListedImage {
  absolutePath: string;
  /** Relative to the input folder, with forward slashes. */
  relativePath: string;
  /** File name only (the copy's name inside `<split>/<Class>/`). */
  name: string;
  className: string;
  format: ImageFormat;
  sha256: string;
  size: number;
}

/** A file that looked like an image (by name or by header) but cannot be used. */
export interface RejectedFile {
  relativePath: string;
  reason: string;
}

export interface DuplicateImage {
  relativePath: string;
  /** The copy that was kept (first by sorted relative path). */
  keptRelativePath: string;
  /** True when the two copies sit in different class folders (a labelling conflict worth knowing about). */
  crossClass: boolean;
}

export interface DatasetListing {
  /** Sorted names of the folders that hold kept images. */
  classNames: string[];
  /** Distinct images, sorted by relative path. */
  images: ListedImage[];
  /** Files that are not images at all (Thumbs.db...). */
  nonImages: string[];
  /** Images lying directly in the input folder: no class folder, so no label. */
  unlabelled: string[];
  duplicates: DuplicateImage[];
  /** Image-named files whose bytes are not an image (empty, text...). */
  rejected: RejectedFile[];
  /** Folder symlinks and special files the walk did not enter or read. */
  notFollowed: string[];
}

export interface ListOptions extends WalkOptions {
  concurrency?: number;
  /** Called once per file inspected, with the number done so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Called once, when the number of files to inspect is known. */
  onStart?: (total: number) => void;
}

type Inspected =
  | { kind: 'image'; format: ImageFormat; sha256: string }
  | { kind: 'broken-image'; reason: string }
  | { kind: 'other' };

export async function listDataset(inputDir: string, options: ListOptions = {}): Promise<DatasetListing> {
  const walk = await walkFiles(inputDir, options);
  const files = [...walk.files].sort((a, b) => compareStrings(a.relativePath, b.relativePath));
  options.onStart?.(files.length);
  let done = 0;
  const inspected = await mapLimit(files, options.concurrency ?? 8, async (file): Promise<Inspected> => {
    const header = await readHeader(file.absolutePath);
    const kind = classifyFile(file.name, header, file.size);
    const result: Inspected = kind.kind === 'image' ? { ...kind, sha256: await sha256File(file.absolutePath) } : kind;
    options.onProgress?.(++done, files.length);
    return result;
  });

  const listing: DatasetListing = {
    classNames: [],
    images: [],
    nonImages: [],
    unlabelled: [],
    duplicates: [],
    rejected: [],
    notFollowed: [...walk.skippedFolderLinks, ...walk.skippedSpecial],
  };
  // Files are in sorted relative-path order, so the first copy of some bytes is the one kept.
  const keptByHash = new Map<string, ListedImage>();
  files.forEach((file, i) => {
    const info = inspected[i];
    if (info.kind === 'other') {
      listing.nonImages.push(file.relativePath);
    } else if (file.parentName === undefined) {
      listing.unlabelled.push(file.relativePath);
    } else if (info.kind === 'broken-image') {
      listing.rejected.push({ relativePath: file.relativePath, reason: info.reason });
    } else {
      const kept = keptByHash.get(info.sha256);
      if (kept) {
        listing.duplicates.push({
          relativePath: file.relativePath,
          keptRelativePath: kept.relativePath,
          crossClass: kept.className !== file.parentName,
        });
        return;
      }
      const image: ListedImage = {
        absolutePath: file.absolutePath,
        relativePath: file.relativePath,
        name: file.name,
        className: file.parentName,
        format: info.format,
        sha256: info.sha256,
        size: file.size,
      };
      keptByHash.set(info.sha256, image);
      listing.images.push(image);
    }
  });
  listing.classNames = [...new Set(listing.images.map((image) => image.className))].sort(compareStrings);
  return listing;
}
