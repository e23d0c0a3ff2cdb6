// Streaming, zip-slip-safe extraction of cell_images.zip into `<dir>/cell_images/<Class>/<file>`.
// Every image lands under the name of the folder that held it in the archive, which flattens the
// Kaggle mirror's nested copy (cell_images/cell_images/<Class>/...) onto the official layout.
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { UserError } from '../errors.js';
import { HEADER_BYTES, classifyFile } from '../io/image-files.js';
import { replaceFolder, sweepLeftovers } from '../io/atomic.js';
import { notOursError } from '../io/output-folder.js';

export interface ExtractOptions {
  /** Replace an existing destination folder (otherwise its existence is an error). */
  force?: boolean;
  /** Called once with the number of entries in the archive. */
  onStart?: (entries: number) => void;
  /** Called after each entry with the number handled so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface ExtractResult {
  /** Images written, per class folder. */
  perClass: Record<string, number>;
  images: number;
  /** Entries skipped because the same class + file name with the same bytes (sha256) was already extracted. */
  duplicates: string[];
  /** Entries that are not images (Thumbs.db, __MACOSX metadata...). */
  nonImages: string[];
  /** Images at the top of the archive, with no folder to name their class. */
  unlabelled: string[];
  /** Entries whose class + file name clashed with a different image: written as `<stem>-<n><ext>`. */
  renamed: string[];
}

/** Why an entry name may not be written anywhere: absolute, drive-letter, or with a ".." segment. */
export function unsafeEntryReason(fileName: string): string | undefined {
  if (fileName.startsWith('/') || fileName.startsWith('\\') || /^[A-Za-z]:/.test(fileName)) return 'absolute path';
  if (fileName.split(/[/\\]/).includes('..')) return 'path with ".."';
  return undefined;
}

function openZip(zipPath: string): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true, autoClose: true, validateEntrySizes: true }, (err, zip) =>
      err ? reject(err) : resolve(zip),
    );
  });
}

function openEntry(zip: ZipFile, entry: Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream))),
  );
}

/** Reads entries one at a time (lazyEntries), so memory stays flat however large the archive is. */
function entryReader(zip: ZipFile): () => Promise<Entry | undefined> {
  let failure: Error | undefined;
  let waiting: { resolve: (entry: Entry | undefined) => void; reject: (err: Error) => void } | undefined;
  zip.on('entry', (entry: Entry) => waiting?.resolve(entry));
  zip.on('end', () => waiting?.resolve(undefined));
  // A permanent listener: yauzl may emit errors between reads, which must not crash the process.
  zip.on('error', (err: Error) => {
    failure = err;
    waiting?.reject(err);
  });
  return () =>
    new Promise<Entry | undefined>((resolve, reject) => {
      if (failure) return reject(failure);
      waiting = { resolve, reject };
      zip.readEntry();
    });
}

async function exists(file: string): Promise<boolean> {
  return fsp.lstat(file).then(
    () => true,
    () => false,
  );
}

/** Reads the start of an entry (enough to recognise an image) and hands back the rest as an iterator. */
async function peek(
  stream: NodeJS.ReadableStream,
): Promise<{ head: Buffer; rest: AsyncIterator<Buffer>; ended: boolean }> {
  const rest = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < HEADER_BYTES) {
    const next = await rest.next();
    if (next.done) return { head: Buffer.concat(chunks), rest, ended: true };
    chunks.push(next.value);
    length += next.value.length;
  }
  return { head: Buffer.concat(chunks), rest, ended: false };
}

/** Reads every remaining chunk of an entry (after `head`) into a sha256 digest. */
async function digestOf(head: Buffer, rest: AsyncIterator<Buffer>, ended: boolean): Promise<string> {
  const hash = createHash('sha256').update(head);
  if (!ended) for (let next = await rest.next(); !next.done; next = await rest.next()) hash.update(next.value);
  return hash.digest('hex');
}

/** `name` without a `-<n>` that extraction adds to a different image of the same class and name. */
function unnumbered(name: string): string {
  const ext = path.extname(name);
  return `${name.slice(0, name.length - ext.length).replace(/-\d+$/, '')}${ext}`;
}

/**
 * Why `destDir` is not what extracting `zipPath` writes (class folders holding only files that the archive has,
 * by class, name and size), or undefined when it is: only then may --force replace it.
 */
async function foreignExtraction(zipPath: string, destDir: string): Promise<string | undefined> {
  const sizes = new Map<string, Set<number>>();
  const zip = await openZip(zipPath);
  try {
    const nextEntry = entryReader(zip);
    for (let entry = await nextEntry(); entry; entry = await nextEntry()) {
      const segments = entry.fileName.split('/');
      if (segments.length < 2 || entry.fileName.endsWith('/')) continue;
      const key = segments.slice(-2).join('/');
      sizes.set(key, (sizes.get(key) ?? new Set()).add(entry.uncompressedSize));
    }
  } finally {
    try {
      zip.close();
    } catch {
      // already closed by autoClose
    }
  }
  for (const className of await fsp.readdir(destDir)) {
    const classDir = path.join(destDir, className);
    if (!(await fsp.lstat(classDir)).isDirectory()) return `${className} is not a class folder of the archive`;
    for (const name of await fsp.readdir(classDir)) {
      const stat = await fsp.lstat(path.join(classDir, name));
      const known = sizes.get(`${className}/${name}`) ?? sizes.get(`${className}/${unnumbered(name)}`);
      if (!stat.isFile() || !known?.has(stat.size))
        return `${className}/${name} is not an image of ${path.basename(zipPath)}`;
    }
  }
  return undefined;
}

/** Refuses an existing `destDir` without `force`, and one that is not what `zipPath` extracts to even with it. */
async function checkDestination(zipPath: string, destDir: string, force: boolean): Promise<void> {
  if (!(await exists(destDir))) return;
  if (!force) throw new UserError(`${destDir} already exists; pass --force to extract the archive over it again`);
  const reason = await foreignExtraction(zipPath, destDir).catch(() => 'the archive cannot be read');
  if (reason) throw notOursError(destDir, `images extracted from ${zipPath}`, reason);
}

/**
 * Extracts the images of `zipPath` into `destDir/<Class>/<file>` through a temporary folder beside it, swapped
 * into place at the end (replaceFolder). An existing `destDir` is replaced only with `force` and only when it
 * holds what this archive extracts to (never a folder of someone's own images). Throws UserError on an unsafe
 * entry name or a corrupt entry.
 */
export async function extractCellImages(
  zipPath: string,
  destDir: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  const absolute = path.resolve(destDir);
  const force = options.force ?? false;
  await checkDestination(zipPath, destDir, force);
  // Only now, with the destination checked: leftovers of killed extractions are cleared, and an extraction a kill
  // left under its `old` name is put back, then checked like any other.
  const { restored } = await sweepLeftovers(path.dirname(absolute), [path.basename(absolute)]);
  if (restored.length > 0) await checkDestination(zipPath, destDir, force);

  const result: ExtractResult = { perClass: {}, images: 0, duplicates: [], nonImages: [], unlabelled: [], renamed: [] };
  let zip: ZipFile | undefined;
  try {
    return await replaceFolder(
      destDir,
      async (tempDir) => {
        zip = await openZip(zipPath);
        await extractEntries(zip, zipPath, tempDir, result, options);
        return result;
      },
      // Extracting takes minutes: the destination is checked again right before it is replaced.
      { beforeSwap: () => checkDestination(zipPath, destDir, force) },
    );
  } catch (err) {
    try {
      zip?.close();
    } catch {
      // already closed by autoClose
    }
    // Our own messages, and local disk problems (full, no permission) that the CLI already words well.
    if (err instanceof UserError || (err as NodeJS.ErrnoException).syscall !== undefined) throw err;
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    // yauzl validates names itself before handing out an entry; word its refusal like ours.
    if (/^(invalid relative path|absolute path|invalid characters in fileName)/.test(reason)) {
      throw new UserError(`${zipPath} holds an entry with an unsafe name (${reason}); refusing to extract it`, 1);
    }
    throw new UserError(`cannot extract ${zipPath} (${reason}); delete it and run \`malaria download\` again`, 1);
  }
}

/** Writes the archive's images into `tempDir/<Class>/`, recording what it wrote and skipped in `result`. */
async function extractEntries(
  zip: ZipFile,
  zipPath: string,
  tempDir: string,
  result: ExtractResult,
  options: ExtractOptions,
): Promise<void> {
  const total = zip.entryCount;
  options.onStart?.(total);
  const nextEntry = entryReader(zip);
  // "<Class>/<file>" of the archive -> sizes and sha256 digests already written under it; and every output name used.
  const written = new Map<string, { sizes: Set<number>; digests: Set<string> }>();
  const usedNames = new Set<string>();
  const createdFolders = new Set<string>();
  let done = 0;
  for (let entry = await nextEntry(); entry; entry = await nextEntry()) {
    options.onProgress?.(++done, total);
    const fileName = entry.fileName;
    const unsafe = unsafeEntryReason(fileName);
    if (unsafe)
      throw new UserError(
        `${zipPath} holds an entry with an unsafe name (${unsafe}): ${fileName}; refusing to extract it`,
        1,
      );
    if (fileName.endsWith('/')) continue; // folder entry: folders are created from the files' class names
    const segments = fileName.split('/');
    if (segments.includes('__MACOSX')) {
      result.nonImages.push(fileName);
      continue;
    }
    if (entry.isEncrypted())
      throw new UserError(`${zipPath}: entry ${fileName} is encrypted; use an unencrypted archive`, 1);

    let { head, rest, ended } = await peek(await openEntry(zip, entry));
    const name = segments[segments.length - 1];
    const className = segments.length >= 2 ? segments[segments.length - 2] : undefined;
    const skip = (list: string[]): void => {
      list.push(fileName);
      // Ending the entry stream skips the rest of its (compressed) bytes instead of inflating them.
      if (!ended) rest.return?.().catch(() => undefined);
    };
    if (classifyFile(name, head, entry.uncompressedSize).kind === 'other') {
      skip(result.nonImages);
      continue;
    }
    if (className === undefined) {
      skip(result.unlabelled);
      continue;
    }
    const key = `${className}/${name}`;
    const earlier = written.get(key) ?? { sizes: new Set<number>(), digests: new Set<string>() };
    if (earlier.sizes.has(entry.uncompressedSize)) {
      // Same class, name and size as an image already written: a duplicate (the Kaggle nested copy) only when
      // the bytes are the same; a different image is read again below and kept under a numbered name.
      if (earlier.digests.has(await digestOf(head, rest, ended))) {
        result.duplicates.push(fileName);
        continue;
      }
      ({ head, rest, ended } = await peek(await openEntry(zip, entry)));
    }
    let targetName = name;
    if (usedNames.has(key)) {
      const ext = path.extname(name);
      const stem = name.slice(0, name.length - ext.length);
      for (let n = 2; usedNames.has(`${className}/${targetName}`); n++) targetName = `${stem}-${n}${ext}`;
      result.renamed.push(fileName);
    }
    if (!createdFolders.has(className)) {
      await fsp.mkdir(path.join(tempDir, className), { recursive: true });
      createdFolders.add(className);
    }
    const target = path.join(tempDir, className, targetName);
    let crc = 0;
    const hash = createHash('sha256');
    const chunks = { head, rest, ended };
    await pipeline(
      async function* () {
        crc = crc32(chunks.head, crc);
        hash.update(chunks.head);
        yield chunks.head;
        if (chunks.ended) return;
        for (let next = await chunks.rest.next(); !next.done; next = await chunks.rest.next()) {
          crc = crc32(next.value, crc);
          hash.update(next.value);
          yield next.value;
        }
      },
      createWriteStream(target, { flags: 'wx' }),
    );
    // yauzl checks sizes but not checksums; a damaged download must not become silently damaged images.
    if (crc !== entry.crc32) {
      throw new UserError(
        `${zipPath}: entry ${fileName} is corrupt (checksum mismatch); delete the archive and download it again`,
        1,
      );
    }
    const modified = entry.getLastModDate();
    await fsp.utimes(target, modified, modified);
    earlier.sizes.add(entry.uncompressedSize);
    earlier.digests.add(hash.digest('hex'));
    written.set(key, earlier);
    usedNames.add(`${className}/${targetName}`);
    result.perClass[className] = (result.perClass[className] ?? 0) + 1;
    result.images++;
  }
}
