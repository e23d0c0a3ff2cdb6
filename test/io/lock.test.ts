import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockFolder, lockPathFor, lockText, withFolderLock } from '../../src/io/lock.js';
import { expectUserError } from '../support/errors.js';
import { DEAD_PID, makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('malaria-lock-');
});
afterEach(async () => removeDir(dir));

const list = async (folder = dir) => (await fs.readdir(folder)).sort();
/** The boot time this machine reports now, as a lock records it. */
const boot = () => Date.now() - os.uptime() * 1000;

describe('lockFolder', () => {
  it('puts the lock beside the folder, never inside it, and removes it on release', async () => {
    const model = path.join(dir, 'model');
    await fs.mkdir(model);
    const lock = await lockFolder(model, '--model-dir model');
    expect(lock.file).toBe(path.join(await fs.realpath(dir), '.model.malaria-lock'));
    expect(await list()).toEqual(['.model.malaria-lock', 'model']);
    expect(await list(model)).toEqual([]);
    expect(JSON.parse(await fs.readFile(lock.file, 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
    expect(await list()).toEqual(['model']);
  });

  it('one lock per folder however it is named (relative, through a symlink)', async () => {
    await fs.mkdir(path.join(dir, 'data'));
    await fs.symlink(path.join(dir, 'data'), path.join(dir, 'link'));
    expect(await lockPathFor(path.join(dir, 'link'))).toBe(await lockPathFor(path.join(dir, 'data')));
    expect(await lockPathFor(path.relative(process.cwd(), path.join(dir, 'data')))).toBe(
      await lockPathFor(path.join(dir, 'data')),
    );
  });

  it('refuses with one line while a live process holds it, changing nothing', async () => {
    const file = path.join(dir, '.out.malaria-lock');
    // The test runner's parent process: alive, and not this one.
    const held = lockText(process.ppid);
    await fs.writeFile(file, held);
    const error = await expectUserError(
      lockFolder(path.join(dir, 'out'), '--out out'),
      new RegExp(`^--out out is in use by malaria \\(pid ${process.ppid}\\); wait for it or stop it`),
    );
    expect(error.message).toContain(file.replace(dir, await fs.realpath(dir)));
    expect(await fs.readFile(file, 'utf8')).toBe(held);
    expect(await list()).toEqual(['.out.malaria-lock']);
  });

  it('takes over a lock whose process is gone, or from before the machine restarted (its pid may be reused)', async () => {
    const file = path.join(dir, '.out.malaria-lock');
    for (const stale of [lockText(DEAD_PID), lockText(process.ppid, boot() - 3_600_000)]) {
      await fs.writeFile(file, stale);
      const lock = await lockFolder(path.join(dir, 'out'), '--out out');
      expect(JSON.parse(await fs.readFile(file, 'utf8')).pid).toBe(process.pid);
      lock.release();
      expect(await list()).toEqual([]);
    }
  });

  it("an empty lock is being written (in use) for a moment, then is a killed run's (taken over)", async () => {
    const file = path.join(dir, '.out.malaria-lock');
    await fs.writeFile(file, '');
    await expectUserError(lockFolder(path.join(dir, 'out'), '--out out'), /^--out out is in use by malaria;/);
    const past = new Date(Date.now() - 60_000);
    await fs.utimes(file, past, past);
    (await lockFolder(path.join(dir, 'out'), '--out out')).release();
    expect(await list()).toEqual([]);
  });

  it('a file of that name that is not a lock of ours is never removed', async () => {
    const file = path.join(dir, '.out.malaria-lock');
    await fs.writeFile(file, 'my notes');
    const past = new Date(Date.now() - 60_000);
    await fs.utimes(file, past, past);
    await expectUserError(
      lockFolder(path.join(dir, 'out'), '--out out'),
      /\.out\.malaria-lock is in the way of the lock of --out out and was not written by malaria; move it away$/,
    );
    expect(await fs.readFile(file, 'utf8')).toBe('my notes');
  });

  it('release leaves a lock another run took over in the meantime', async () => {
    const lock = await lockFolder(path.join(dir, 'out'), '--out out');
    await fs.writeFile(lock.file, lockText(process.ppid));
    lock.release();
    expect(await list()).toEqual(['.out.malaria-lock']);
  });

  it('folders made for the lock go with it when the command wrote nothing there', async () => {
    await withFolderLock(path.join(dir, 'new', 'deeper', 'out'), '--out out', async () => {
      expect(await list(path.join(dir, 'new', 'deeper'))).toEqual(['.out.malaria-lock']);
    });
    expect(await list()).toEqual([]);
    await withFolderLock(path.join(dir, 'new', 'out'), '--out out', async () => {
      await fs.mkdir(path.join(dir, 'new', 'out'));
    });
    expect(await list(path.join(dir, 'new'))).toEqual(['out']);
  });

  it('withFolderLock releases the lock when the work fails, and its signal handlers with it', async () => {
    const listeners = process.listenerCount('SIGINT');
    await expect(
      withFolderLock(path.join(dir, 'out'), '--out out', async () => Promise.reject(new Error('disk trouble'))),
    ).rejects.toThrow('disk trouble');
    expect(await list()).toEqual([]);
    expect(process.listenerCount('SIGINT')).toBe(listeners);
  });
});
