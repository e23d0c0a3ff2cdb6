// Temporary folders are named after the process that writes them (`.<what>-<pid>-tmp`), so a later run
// can tell an interrupted run's leftovers (process gone) from a run still working (process alive).
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the entries of `parent` whose name matches `pattern` (first capture group: the pid) and whose
 * process is gone, or is this one. Returns the names removed; a missing `parent` has none.
 */
export async function removeStaleTemps(parent: string, pattern: RegExp): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names.sort()) {
    const match = pattern.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid && isProcessAlive(pid)) continue;
    await fse.remove(path.join(parent, name));
    removed.push(name);
  }
  return removed;
}
