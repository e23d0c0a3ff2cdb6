// Recognising image files by their first bytes, and walking a folder tree without following links.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';

export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp' | 'bmp' | 'tiff';

/** Bytes `detectImageFormat` needs to see (WebP's tag sits at offset 8, BMP's header size at 14). */
export const HEADER_BYTES = 32;

/** Extensions that announce an image; a file with one of these that does not decode is rejected, not skipped. */
const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.png',
  '.jpg',
  '.jpeg',
  '.gif',
  '.webp',
  '.bmp',
  '.tif',
  '.tiff',
]);

// BITMAPCOREHEADER, BITMAPINFOHEADER, v2, v3, OS/2 v2, v4, v5: "BM" alone is too weak a signature.
const BMP_HEADER_SIZES = new Set([12, 40, 52, 56, 64, 108, 124]);

function startsWith(bytes: Uint8Array, signature: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  return signature.every((b, i) => bytes[offset + i] === b);
}

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

/** The image format the bytes start with, or undefined when they are not a format sharp decodes. */
export function detectImageFormat(header: Uint8Array): ImageFormat | undefined {
  if (startsWith(header, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(header, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(header, ascii('GIF87a')) || startsWith(header, ascii('GIF89a'))) return 'gif';
  if (startsWith(header, ascii('RIFF')) && startsWith(header, ascii('WEBP'), 8)) return 'webp';
  if (startsWith(header, ascii('BM')) && header.length >= 18) {
    const dibHeaderSize = header[14] | (header[15] << 8) | (header[16] << 16) | (header[17] << 24);
    if (BMP_HEADER_SIZES.has(dibHeaderSize)) return 'bmp';
  }
  // Little- and big-endian TIFF, and BigTIFF (version 43).
  if (startsWith(header, [0x49, 0x49, 0x2a, 0x00]) || startsWith(header, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(header, [0x49, 0x49, 0x2b, 0x00]) || startsWith(header, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff';
  return undefined;
}

/**
 * What a file is, judged by content first and name second:
 * - 'image': the bytes start like an image (whatever the extension says);
 * - 'broken-image': an image name (.png, .jpg...) over bytes that are not an image: reported, never silently dropped;
 * - 'other': neither (Thumbs.db, .DS_Store, README.txt, macOS "._" resource forks).
 */
export type FileKind =
  | { kind: 'image'; format: ImageFormat }
  | { kind: 'broken-image'; reason: string }
  | { kind: 'other' };

export function classifyFile(name: string, header: Uint8Array, size: number): FileKind {
  const format = detectImageFormat(header);
  if (format) return { kind: 'image', format };
  // AppleDouble files ("._x.png") carry Finder metadata, not pixels; they are junk, not broken images.
  if (name.startsWith('._')) return { kind: 'other' };
  if (IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase())) {
    return { kind: 'broken-image', reason: size === 0 ? 'empty file' : 'content is not a known image format' };
  }
  return { kind: 'other' };
}

/** Reads up to HEADER_BYTES from the start of a file. */
export async function readHeader(file: string, bytes = HEADER_BYTES): Promise<Uint8Array> {
  const handle = await fsp.open(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Hex SHA-256 of a file, streamed so a large stray file does not have to fit in memory. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A regular file found by `walkFiles`. */
export interface WalkedFile {
  absolutePath: string;
  /** Relative to the walk root, always with forward slashes (stable across platforms for the manifest). */
  relativePath: string;
  name: string;
  /** Name of the folder that directly holds the file; undefined for files directly in the root. */
  parentName: string | undefined;
  size: number;
}

export interface WalkResult {
  files: WalkedFile[];
  /** Symbolic links to folders, which are not followed (a link loop must not hang the walk). */
  skippedFolderLinks: string[];
  /** Sockets, FIFOs, devices, dangling links: reading them could block or fail. */
  skippedSpecial: string[];
}

export interface WalkOptions {
  /** Absolute paths of folders never entered (for example the output's own split folders). */
  exclude?: (absolutePath: string) => boolean;
}

const compareNames = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Lists every regular file under `root`, sorted by relative path (code units: the same on every
 * machine). Folder symlinks are not followed; file symlinks count as files when they point at one.
 */
export async function walkFiles(root: string, options: WalkOptions = {}): Promise<WalkResult> {
  const files: WalkedFile[] = [];
  const skippedFolderLinks: string[] = [];
  const skippedSpecial: string[] = [];
  const pending: string[] = [''];
  while (pending.length > 0) {
    const relativeDir = pending.pop()!;
    const absoluteDir = path.join(root, relativeDir);
    const entries = await fsp.readdir(absoluteDir, { withFileTypes: true });
    const subfolders: string[] = [];
    for (const entry of entries) {
      const relativePath = relativeDir ? `${relativeDir}/${entry.name}` : entry.name;
      const absolutePath = path.join(absoluteDir, entry.name);
      if (entry.isDirectory()) {
        if (!options.exclude?.(absolutePath)) subfolders.push(relativePath);
        continue;
      }
      let stats;
      try {
        stats = entry.isSymbolicLink()
          ? await fsp.stat(absolutePath)
          : entry.isFile()
            ? await fsp.lstat(absolutePath)
            : undefined;
      } catch {
        stats = undefined; // dangling link
      }
      if (stats?.isDirectory()) {
        skippedFolderLinks.push(relativePath);
      } else if (stats?.isFile()) {
        const parentName = relativeDir ? path.posix.basename(relativeDir) : undefined;
        files.push({ absolutePath, relativePath, name: entry.name, parentName, size: stats.size });
      } else {
        skippedSpecial.push(relativePath);
      }
    }
    pending.push(...subfolders);
  }
  files.sort((a, b) => compareNames(a.relativePath, b.relativePath));
  return {
    files,
    skippedFolderLinks: skippedFolderLinks.sort(compareNames),
    skippedSpecial: skippedSpecial.sort(compareNames),
  };
}
