// Single-file outputs (train --plot; evaluate --roc, --calibration, --errors). A file already there may be replaced
// only when it is one of ours, a PNG whose Software text chunk names this tool (read from the file's chunks, never
// guessed from its name), or when the user passes --force; a folder never. The commands check before any work, and
// the writer checks again as it writes. An output file also stays out of the folders its command reads
// (assertApart) and out of a folder that must hold only the model.
import { promises as fs, type Stats } from 'node:fs';
import { describeFsError, UserError } from '../errors.js';
import { assertApart, isInside, realPathAllowMissing, type NamedPath } from './output-folder.js';
import { isPng, readPngText, withPngText } from './png-text.js';

/** The tEXt chunk every PNG this tool writes carries. */
const SOFTWARE_KEYWORD = 'Software';
const SOFTWARE_NAME = 'malaria';
/** Our chunk sits right after IHDR, 33 bytes in: the head of the file always holds it. */
const HEAD_BYTES = 4096;

/** A file a command writes: its path, how the user named it (for example "--roc out/roc.png"), --force. */
export interface OutputFile extends NamedPath {
  /** Replace the file even when this tool did not write it. */
  force?: boolean;
}

/** A path as an OutputFile named by its path, without --force (for library callers that pass a plain path). */
export const asOutputFile = (file: string | OutputFile): OutputFile =>
  typeof file === 'string' ? { path: file, label: file } : file;

/** `png` marked as ours: with the Software text chunk that checkOutputFile() looks for. */
export function markAsOurs(png: Uint8Array): Buffer {
  return withPngText(png, SOFTWARE_KEYWORD, SOFTWARE_NAME);
}

async function readHead(file: string): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await fs.open(file, 'r');
    const head = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
    return head.subarray(0, bytesRead);
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

/** Why the entry at `file` is not a PNG this tool wrote, or undefined when it is one. */
async function notOurs(file: string, stat: Stats): Promise<string | undefined> {
  if (stat.isSymbolicLink()) return 'it is a symbolic link';
  // Never opened: a FIFO would block the read.
  if (!stat.isFile()) return 'it is not a regular file';
  const head = await readHead(file);
  if (head === undefined) return 'it cannot be read';
  if (!isPng(head)) return 'it is not a PNG';
  const software = readPngText(head).get(SOFTWARE_KEYWORD);
  const ours = software === SOFTWARE_NAME || software?.startsWith(`${SOFTWARE_NAME} `);
  return ours ? undefined : 'it is a PNG another program wrote';
}

/** What is at an output file's path: nothing, one of our PNGs, or (with --force) a file we may replace anyway. */
export type OutputFileState = 'missing' | 'ours' | 'forced';

/**
 * Checks the file a command is about to write: missing or ours is fine; anything else is a one-line UserError
 * (exit 2) unless `force`, and a folder even then. `forceAllowed: false` leaves --force out of the advice (for a
 * command where it means something else, such as train --resume).
 */
export async function checkOutputFile(
  file: string,
  label: string,
  options: { force?: boolean; forceAllowed?: boolean } = {},
): Promise<OutputFileState> {
  let stat;
  try {
    stat = await fs.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new UserError(describeFsError(err, label) ?? `cannot read ${label}: ${(err as Error).message}`);
  }
  if (stat.isDirectory()) throw new UserError(`${label} is a folder: name a file to write`);
  const reason = await notOurs(file, stat);
  if (reason === undefined) return 'ours';
  if (options.force) return 'forced';
  const remedy =
    options.forceAllowed === false
      ? 'choose another file, or move it away yourself'
      : 'choose another file, or pass --force to replace it';
  throw new UserError(`${label} is not a file this tool wrote (${reason}); nothing was changed: ${remedy}`);
}

/** Refuses two outputs of one command that name the same file (symlinks resolved): the second would replace the first. */
export async function assertDistinctFiles(outputs: readonly NamedPath[]): Promise<void> {
  const seen: { real: string; label: string }[] = [];
  for (const output of outputs) {
    const real = await realPathAllowMissing(output.path);
    const earlier = seen.find((other) => other.real === real);
    if (earlier) throw new UserError(`${earlier.label} and ${output.label} name the same file; give each its own`);
    seen.push({ real, label: output.label });
  }
}

/**
 * Refuses an output file inside a folder that must hold only what this tool writes there (a model folder: one
 * stray file and the next run no longer recognises the folder as ours).
 */
export async function assertOutsideFolder(output: NamedPath, folder: NamedPath, holds: string): Promise<void> {
  const [file, dir] = await Promise.all([realPathAllowMissing(output.path), realPathAllowMissing(folder.path)]);
  if (isInside(file, dir)) {
    throw new UserError(
      `${output.label} ${file === dir ? 'is' : 'lies inside'} ${folder.label}, which holds ${holds} and nothing else; choose a path outside it`,
    );
  }
}

/**
 * All the checks before a command that writes `outputs` does any work: each names its own file, none lies in a
 * folder the command reads (`inputs`), and each may be written (checkOutputFile).
 */
export async function checkOutputFiles(outputs: readonly OutputFile[], inputs: readonly NamedPath[]): Promise<void> {
  await assertDistinctFiles(outputs);
  await assertApart(outputs, inputs);
  for (const output of outputs) await checkOutputFile(output.path, output.label, { force: output.force });
}
