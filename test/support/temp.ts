// Temporary folders for tests, removed when the test is done with them.
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export async function makeTempDir(prefix = 'malaria-test-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
}

/** Runs `run` with a fresh temporary folder and removes the folder afterwards, whatever happened. */
export async function withTempDir<T>(run: (dir: string) => Promise<T>, prefix?: string): Promise<T> {
  const dir = await makeTempDir(prefix);
  try {
    return await run(dir);
  } finally {
    await removeDir(dir);
  }
}

/** A pid far above any real one: a temporary name carrying it was left by a run that is gone. */
export const DEAD_PID = 999_999_999;
