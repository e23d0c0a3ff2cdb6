// One run at a time per output folder: a command that writes a folder first creates `.<name>.malaria-lock` beside
// it (never inside, so the folder's contents stay exactly what the command writes, and never a file the ownership
// check would have to know). The lock holds the pid and the boot time of its process; a second run finds it and
// stops with one line while that process lives, and takes it over once it is gone (killed, or the machine
// restarted, which may hand the pid to another program). It is removed when the command ends, also on an error,
// Ctrl-C, SIGTERM or process.exit; a SIGKILL or a power cut leaves it, and the next run takes it over.
import { promises as fs, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError, describeFsError } from '../errors.js';
import { isProcessAlive, tempPath } from './atomic.js';
import { realPathAllowMissing } from './output-folder.js';

const LOCK_SUFFIX = '.malaria-lock';
/** Boot times read a few seconds apart differ by the clock's adjustments: a reboot moves it by far more. */
const SAME_BOOT_MS = 30_000;
/** A lock still empty after this long was left by a process killed between creating and writing it. */
const EMPTY_LOCK_GRACE_MS = 10_000;

interface Holder {
  pid: number;
  boot: number;
}

const bootTime = (): number => Date.now() - os.uptime() * 1000;

/** What a lock holds: the pid of the process holding it and when its machine started. */
export function lockText(pid: number, boot = bootTime()): string {
  return `${JSON.stringify({ pid, boot })}\n`;
}

/** Where the lock of `target` lives: `.<name>.malaria-lock` beside it, symlinks resolved (one lock per folder). */
export async function lockPathFor(target: string): Promise<string> {
  const real = await realPathAllowMissing(target);
  return path.join(path.dirname(real), `.${path.basename(real)}${LOCK_SUFFIX}`);
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    return Number.isInteger(value.pid) && typeof value.boot === 'number' ? (value as Holder) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The live process holding `file`; 'stale' when the lock may be taken over, 'gone' when there is none, 'foreign'
 * when the file is not a lock this tool writes (never removed).
 */
async function holderOf(file: string): Promise<Holder | 'stale' | 'gone' | 'foreign'> {
  let text: string;
  let modified: number;
  try {
    [text, modified] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file).then((s) => s.mtimeMs)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  const holder = parseHolder(text);
  if (!holder && text.trim() !== '') return 'foreign';
  if (!holder) return Date.now() - modified < EMPTY_LOCK_GRACE_MS ? { pid: 0, boot: bootTime() } : 'stale';
  const sameBoot = Math.abs(holder.boot - bootTime()) < SAME_BOOT_MS;
  return sameBoot && isProcessAlive(holder.pid) ? holder : 'stale';
}

/** Creates the lock only if there is none (O_EXCL); false when one is there. */
async function create(file: string): Promise<boolean> {
  let handle;
  try {
    handle = await fs.open(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await handle.writeFile(lockText(process.pid));
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * Removes a stale lock so that only one of several runs finding it at once does: it is renamed away (atomic, one
 * rename wins), and put back if what was renamed turns out to be a live run's fresh lock.
 */
async function removeStale(file: string): Promise<void> {
  const aside = tempPath(file);
  try {
    await fs.rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  // Between reading it and renaming it, a live run may have replaced it: that one goes back.
  if ((await holderOf(aside)) !== 'stale') await fs.link(aside, file).catch(() => undefined);
  await fs.rm(aside, { force: true });
}

/** Folders created for a lock, removed again (when empty) with it, so a refused command leaves none behind. */
const held = new Map<string, { createdFolder?: string }>();

function ownsLock(file: string): boolean {
  try {
    return parseHolder(readFileSync(file, 'utf8'))?.pid === process.pid;
  } catch {
    return false;
  }
}

/** Removes a lock of this process and the folders made for it (synchronously: it also runs as the process exits). */
function releaseSync(file: string): void {
  const entry = held.get(file);
  if (!entry) return;
  held.delete(file);
  if (ownsLock(file)) {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
  if (entry.createdFolder) {
    // From the lock's folder up to the first one created for it, each only while empty.
    for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
      try {
        // rmdir refuses a folder that is not empty: what the command wrote there stays.
        rmdirSync(dir);
      } catch {
        break;
      }
      if (dir === entry.createdFolder || path.dirname(dir) === dir) break;
    }
  }
  if (held.size === 0) removeHandlers();
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function releaseAll(): void {
  for (const file of [...held.keys()]) releaseSync(file);
}

/**
 * On a signal nothing else handles, the locks go and the signal is raised again, so the process still ends the
 * way it would have (killed by that signal). When another handler listens (train's Ctrl-C stops after the batch),
 * it decides; the locks go as the command ends or the process exits.
 */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  releaseAll();
  removeHandlers();
  process.kill(process.pid, signal);
}

let handlersInstalled = false;
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', releaseAll);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}
function removeHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.off('exit', releaseAll);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

export interface FolderLock {
  /** The lock file. */
  file: string;
  release: () => void;
}

/**
 * Takes the lock of the folder `target` (`label` names it, for example "--model-dir malaria/model"): one line and
 * exit code 2 while another live process holds it. Release it with `release()` (withFolderLock does).
 */
export async function lockFolder(target: string, label: string): Promise<FolderLock> {
  const file = await lockPathFor(target);
  if (held.has(file)) throw new UserError(`${label} is in use by this run already`);
  let createdFolder: string | undefined;
  try {
    createdFolder = await fs.mkdir(path.dirname(file), { recursive: true });
  } catch (err) {
    throw new UserError(describeFsError(err, `cannot lock ${label} (${file})`) ?? (err as Error).message);
  }
  held.set(file, { createdFolder });
  installHandlers();
  const release = () => releaseSync(file);
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await create(file)) return { file, release };
      const holder = await holderOf(file);
      if (typeof holder === 'object') {
        const who = holder.pid > 0 ? `malaria (pid ${holder.pid})` : 'malaria';
        throw new UserError(
          `${label} is in use by ${who}; wait for it or stop it (if no malaria runs, delete ${file})`,
        );
      }
      if (holder === 'foreign') {
        throw new UserError(
          `${file} is in the way of the lock of ${label} and was not written by malaria; move it away`,
        );
      }
      if (holder === 'stale') await removeStale(file);
    }
    throw new UserError(`${label} is in use by other runs starting at the same time; try again`);
  } catch (err) {
    release();
    if (err instanceof UserError) throw err;
    throw new UserError(describeFsError(err, `cannot lock ${label} (${file})`) ?? (err as Error).message);
  }
}

/** Runs `run` holding the lock of `target`, released however `run` ends. */
export async function withFolderLock<T>(target: string, label: string, run: () => Promise<T>): Promise<T> {
  const lock = await lockFolder(target, label);
  try {
    return await run();
  } finally {
    lock.release();
  }
}
