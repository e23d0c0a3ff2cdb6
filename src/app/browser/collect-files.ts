// Turns what the user dropped or picked (files, or whole folders) into a flat, name-sorted list of image files.

export interface CellFile {
  file: File;
  /** The path below what was dropped or picked ("Parasitized/cell_1.png"), or the file name. */
  name: string;
}

export interface Collected {
  images: CellFile[];
  /** Files that are not images by type or extension (Thumbs.db, .DS_Store, notes...). */
  skipped: string[];
}

const IMAGE_NAME = /\.(png|jpe?g|webp|gif|bmp)$/i;

function isImage(file: File): boolean {
  return file.type.startsWith('image/') || IMAGE_NAME.test(file.name);
}

const byName = new Intl.Collator(undefined, { numeric: true }).compare;

function split(files: CellFile[]): Collected {
  const images = files.filter((f) => isImage(f.file)).sort((a, b) => byName(a.name, b.name));
  const skipped = files.filter((f) => !isImage(f.file)).map((f) => f.name);
  return { images, skipped };
}

/** Files from an <input type="file">; a folder picker fills webkitRelativePath. */
export function fromFileList(list: FileList | null): Collected {
  return split(Array.from(list ?? [], (file) => ({ file, name: file.webkitRelativePath || file.name })));
}

function fileOf(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

function readBatch(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry: FileSystemEntry, out: CellFile[]): Promise<void> {
  if (entry.isFile) {
    out.push({ file: await fileOf(entry as FileSystemFileEntry), name: entry.fullPath.replace(/^\//, '') });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries returns at most ~100 entries per call; an empty batch means the folder is done.
  for (let batch = await readBatch(reader); batch.length > 0; batch = await readBatch(reader)) {
    for (const child of batch) await walk(child, out);
  }
}

/**
 * Files from a drop, descending into dropped folders. Must be called inside the drop event: the browser
 * invalidates the items once the handler returns, so the entries are taken before the first await.
 */
export function fromDrop(transfer: DataTransfer): Promise<Collected> {
  const entries = Array.from(transfer.items, (item) => item.webkitGetAsEntry?.() ?? null);
  if (entries.length === 0 || entries.some((entry) => entry === null))
    return Promise.resolve(fromFileList(transfer.files));
  return (async () => {
    const files: CellFile[] = [];
    for (const entry of entries as FileSystemEntry[]) await walk(entry, files);
    return split(files);
  })();
}
