// Writing so that a kill at any moment leaves the old output or the new one, and no litter a later run cannot
// clean. Every temporary name this tool makes comes from tempPath(): `.<name>.malaria-<kind>-<pid>-<8 hex>` beside
// the file or folder `<name>` it stands for, where kind is `tmp` (being written) or `old` (the previous output,
// moved aside while the new one is renamed into place). sweepLeftovers() knows only that scheme, random part
// included (names earlier versions used look like a user's own, `.app-2024-old`, and are never touched), and
// removes only leftovers of processes that are gone, restoring an `old` one whose target is missing (a kill between
// the two renames of replaceFolder). Callers sweep only once the output they write has passed its ownership check.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export type TempKind = 'tmp' | 'old';

/** A temporary name: what it stands for (`base`, beside it), why it exists, and which process made it. */
export interface TempName {
  base: string;
  kind: TempKind;
  pid: number;
}

/** Inside a `tmp` folder: the old entries a multi-entry swap moved out; such a folder is finished, not swept. */
export const SWAP_IN_PROGRESS = '.replaced';

const SCHEME = /^\.(.+)\.malaria-(tmp|old)-(\d+)-[0-9a-f]{8}$/;

/** Reads a temporary name of this tool; undefined for any other name (earlier versions' names included). */
export function parseTempName(name: string): TempName | undefined {
  const match = SCHEME.exec(name);
  return match ? { base: match[1], kind: match[2] as TempKind, pid: Number(match[3]) } : undefined;
}

/** A fresh temporary path beside `target` (same folder, so a rename moves it into place atomically). */
export function tempPath(target: string, kind: TempKind = 'tmp'): string {
  const absolute = path.resolve(target);
  return path.join(
    path.dirname(absolute),
    `.${path.basename(absolute)}.malaria-${kind}-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

/** Writes and flushes to the disk, so a rename that follows never publishes a file whose bytes a power cut lost. */
export async function writeFileSynced(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a folder's entries (the renames into it) where the platform allows it; elsewhere a no-op. */
export async function syncFolder(dir: string): Promise<void> {
  let handle;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows cannot open or fsync a folder; the rename is still atomic there.
  } finally {
    await handle?.close();
  }
}

/** Writes `data` to a temporary name beside `target`, flushed, then renames it over `target`: readers see old or new. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const temp = tempPath(target);
  try {
    await writeFileSynced(temp, data);
    await fs.rename(temp, target);
  } catch (err) {
    await fs.rm(temp, { force: true });
    // Name the file being replaced, not the temporary one (a FileHandle's write errors name no file at all).
    if ((err as NodeJS.ErrnoException)?.code) (err as NodeJS.ErrnoException).path = target;
    throw err;
  }
  await syncFolder(path.dirname(path.resolve(target)));
}

export interface ReplaceOptions {
  /**
   * Runs after `fill`, right before the old target is moved aside: the check that it may still be replaced (a long
   * fill leaves time for someone to put a file of their own into it). Throwing keeps the old target as it is.
   */
  beforeSwap?: () => Promise<void>;
}

/**
 * Builds a new folder with `fill(temp)` in a temporary folder beside `target`, then swaps it in: target -> old
 * name, temp -> target, old removed. A kill before the swap leaves the old target and a `tmp` leftover; a kill
 * between the two renames leaves no target and an `old` leftover, which sweepLeftovers() renames back. The
 * caller checks that `target` may be replaced (before, and again in `beforeSwap`). On an error the old target is
 * put back and the temp removed.
 */
export async function replaceFolder<T>(
  target: string,
  fill: (temp: string) => Promise<T>,
  options: ReplaceOptions = {},
): Promise<T> {
  const absolute = path.resolve(target);
  const parent = path.dirname(absolute);
  await fs.mkdir(parent, { recursive: true });
  const temp = tempPath(absolute, 'tmp');
  const old = tempPath(absolute, 'old');
  let movedAside = false;
  try {
    await fs.mkdir(temp);
    const result = await fill(temp);
    await syncFolder(temp);
    await options.beforeSwap?.();
    movedAside = await fs.rename(absolute, old).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
    await fs.rename(temp, absolute);
    await syncFolder(parent);
    if (movedAside) await fs.rm(old, { recursive: true, force: true });
    return result;
  } catch (err) {
    await fs.rm(temp, { recursive: true, force: true }).catch(() => undefined);
    if (movedAside && !(await exists(absolute))) await fs.rename(old, absolute).catch(() => undefined);
    throw err;
  }
}

export interface SweepResult {
  /** Leftover names deleted. */
  removed: string[];
  /** `old` leftovers renamed back to their missing target: "<leftover> -> <target>". */
  restored: string[];
}

/**
 * Cleans `parent` of leftovers of this tool's interrupted runs: entries with a temporary name of the current scheme
 * (see parseTempName) whose process is gone, limited to those standing for one of `bases` (all of them when
 * omitted, for folders that are wholly ours). An `old` leftover whose target is missing is the last complete
 * output: it is renamed back (the newest one if several) instead of deleted. A missing `parent` has nothing to
 * sweep. Call it only once the output it cleans for has passed its ownership check: a refused command changes
 * nothing, not even our own leftovers.
 */
export async function sweepLeftovers(parent: string, bases?: readonly string[]): Promise<SweepResult> {
  const result: SweepResult = { removed: [], restored: [] };
  let names: string[];
  try {
    names = await fs.readdir(parent);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return result;
    throw err;
  }
  const leftovers: { name: string; temp: TempName }[] = [];
  for (const name of names.sort()) {
    const temp = parseTempName(name);
    if (!temp || (bases && !bases.includes(temp.base))) continue;
    // A run still working (another process, or this one) owns its temporaries.
    if (temp.pid === process.pid || isProcessAlive(temp.pid)) continue;
    leftovers.push({ name, temp });
  }
  const olds = leftovers.filter((l) => l.temp.kind === 'old');
  for (const base of new Set(olds.map((l) => l.temp.base))) {
    const target = path.join(parent, base);
    if (await exists(target)) continue;
    const candidates = olds.filter((l) => l.temp.base === base);
    const times = await Promise.all(candidates.map((c) => fs.lstat(path.join(parent, c.name)).then((s) => s.ctimeMs)));
    const newest = candidates[times.indexOf(Math.max(...times))];
    await fs.rename(path.join(parent, newest.name), target);
    result.restored.push(`${newest.name} -> ${base}`);
    leftovers.splice(leftovers.indexOf(newest), 1);
  }
  for (const { name, temp } of leftovers) {
    // A folder swap of several entries (build-dataset) is finished by its own command, never deleted here.
    if (temp.kind === 'tmp' && (await exists(path.join(parent, name, SWAP_IN_PROGRESS)))) continue;
    await fs.rm(path.join(parent, name), { recursive: true, force: true });
    result.removed.push(name);
  }
  return result;
}
