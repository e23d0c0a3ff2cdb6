import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseTempName, replaceFolder, sweepLeftovers, tempPath, writeFileAtomic } from '../../src/io/atomic.js';
import { DEAD_PID, makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('malaria-atomic-');
});
afterEach(async () => {
  vi.restoreAllMocks();
  await removeDir(dir);
});

const list = async (folder = dir) => (await fs.readdir(folder)).sort();

describe('temporary names', () => {
  it('one scheme for files and folders, read back with the name they stand for, the kind and the pid', () => {
    const file = tempPath(path.join(dir, 'weights.bin'));
    expect(path.dirname(file)).toBe(dir);
    expect(path.basename(file)).toMatch(new RegExp(`^\\.weights\\.bin\\.malaria-tmp-${process.pid}-[0-9a-f]{8}$`));
    expect(parseTempName(path.basename(file))).toEqual({ base: 'weights.bin', kind: 'tmp', pid: process.pid });
    expect(parseTempName(path.basename(tempPath(path.join(dir, 'app'), 'old')))).toEqual({
      base: 'app',
      kind: 'old',
      pid: process.pid,
    });
  });

  it("reads only names of the current scheme, random part included: no earlier version's, no one else's", () => {
    expect(parseTempName('.weights.bin.malaria-tmp-123-0a1b2c3d')).toEqual({
      base: 'weights.bin',
      kind: 'tmp',
      pid: 123,
    });
    expect(parseTempName('.app.malaria-old-123-0a1b2c3d')).toEqual({ base: 'app', kind: 'old', pid: 123 });
    // Names earlier versions used are indistinguishable from a user's own (".app-2024-old"): never ours.
    for (const name of [
      '.weights.bin.tmp-123-0a1b2c3d',
      'checkpoint.tmp-123-0a1b2c3d',
      '.out.export-123-0a1b2c3d.tmp',
      '.out.export-123-0a1b2c3d.tmp.old',
      'app.old-123-0a1b2c3d',
      '.build-dataset-123-tmp',
      '.cell_images-123-old',
      '.app-2024-old',
      '.plot.png.123.0a1b2c3d.tmp',
      // The scheme without its random part, or with a part that is not 8 hex digits.
      '.app.malaria-old-123',
      '.app.malaria-old-123-0a1b2c3',
      '.app.malaria-old-123-0A1B2C3D',
      'app.malaria-old-123-0a1b2c3d',
    ])
      expect(parseTempName(name), name).toBeUndefined();
    for (const name of ['notes.tmp', 'model.json', '.DS_Store', 'cell.png', 'backup.old', 'x.tmp-12-zz'])
      expect(parseTempName(name), name).toBeUndefined();
  });
});

describe('writeFileAtomic', () => {
  it('replaces a file without leaving temporary files behind', async () => {
    const target = path.join(dir, 'a.json');
    await writeFileAtomic(target, 'old');
    await writeFileAtomic(target, 'new');
    expect(await fs.readFile(target, 'utf8')).toBe('new');
    expect(await list()).toEqual(['a.json']);
    // A failed write (the folder is gone) leaves nothing behind and reports the error.
    await expect(writeFileAtomic(path.join(dir, 'gone', 'b.json'), 'x')).rejects.toThrow(/ENOENT/);
    expect(await list()).toEqual(['a.json']);
  });
});

describe('replaceFolder', () => {
  it('replaces the folder with what fill wrote, leaving nothing beside it', async () => {
    const target = path.join(dir, 'out');
    await fs.mkdir(target);
    await fs.writeFile(path.join(target, 'old.txt'), 'old');
    const result = await replaceFolder(target, async (temp) => {
      expect(path.basename(temp)).toMatch(/^\.out\.malaria-tmp-\d+-[0-9a-f]{8}$/);
      await fs.writeFile(path.join(temp, 'new.txt'), 'new');
      return 42;
    });
    expect(result).toBe(42);
    expect(await list(target)).toEqual(['new.txt']);
    expect(await list()).toEqual(['out']);
  });

  it('a failure while filling or while swapping keeps the old folder and removes the temporary one', async () => {
    const target = path.join(dir, 'out');
    await fs.mkdir(target);
    await fs.writeFile(path.join(target, 'old.txt'), 'old');
    await expect(replaceFolder(target, async () => Promise.reject(new Error('disk trouble')))).rejects.toThrow(
      'disk trouble',
    );
    expect(await list()).toEqual(['out']);
    expect(await fs.readFile(path.join(target, 'old.txt'), 'utf8')).toBe('old');

    // The second rename (temp -> target) fails: the old folder is put back.
    const rename = fs.rename.bind(fs);
    vi.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      if (path.basename(String(from)).includes('.malaria-tmp-'))
        throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      return rename(from, to);
    });
    await expect(
      replaceFolder(target, async (temp) => fs.writeFile(path.join(temp, 'new.txt'), 'new')),
    ).rejects.toThrow('EIO');
    expect(await list()).toEqual(['out']);
    expect(await list(target)).toEqual(['old.txt']);
  });
});

describe('sweepLeftovers', () => {
  it('restores the previous output a kill left moved aside, and removes the half-written new one', async () => {
    // What a kill between replaceFolder's two renames leaves: no target, the old one aside, the new one complete.
    await fs.mkdir(path.join(dir, `.out.malaria-old-${DEAD_PID}-0123abcd`));
    await fs.writeFile(path.join(dir, `.out.malaria-old-${DEAD_PID}-0123abcd`, 'old.txt'), 'old');
    await fs.mkdir(path.join(dir, `.out.malaria-tmp-${DEAD_PID}-89abcdef`));
    const swept = await sweepLeftovers(dir, ['out']);
    expect(swept).toEqual({
      restored: [`.out.malaria-old-${DEAD_PID}-0123abcd -> out`],
      removed: [`.out.malaria-tmp-${DEAD_PID}-89abcdef`],
    });
    expect(await list()).toEqual(['out']);
    expect(await fs.readFile(path.join(dir, 'out', 'old.txt'), 'utf8')).toBe('old');
  });

  it('removes an old copy when the target is in place (killed after the swap, before the cleanup)', async () => {
    await fs.mkdir(path.join(dir, 'out'));
    await fs.mkdir(path.join(dir, `.out.malaria-old-${DEAD_PID}-0123abcd`));
    expect(await sweepLeftovers(dir, ['out'])).toEqual({
      restored: [],
      removed: [`.out.malaria-old-${DEAD_PID}-0123abcd`],
    });
    expect(await list()).toEqual(['out']);
  });

  it('leaves alone what is not its own: other names, runs still alive, other targets, a swap to finish', async () => {
    const kept = [
      'notes.txt',
      'x.tmp',
      // Still running: this process and its parent.
      `.out.malaria-tmp-${process.pid}-0123abcd`,
      `.out.malaria-tmp-${process.ppid}-0123abcd`,
      // Stands for another output than the one being written.
      `.other.malaria-tmp-${DEAD_PID}-0123abcd`,
      // A multi-entry swap (build-dataset) holding the entries it moved out: finished by its command.
      `.out.malaria-tmp-${DEAD_PID}-89abcdef`,
    ];
    for (const name of kept) await fs.mkdir(path.join(dir, name));
    await fs.mkdir(path.join(dir, `.out.malaria-tmp-${DEAD_PID}-89abcdef`, '.replaced'));
    await fs.writeFile(path.join(dir, `.weights.bin.malaria-tmp-${DEAD_PID}-0123abcd`), 'half');
    expect(await sweepLeftovers(dir, ['out', 'weights.bin'])).toEqual({
      restored: [],
      removed: [`.weights.bin.malaria-tmp-${DEAD_PID}-0123abcd`],
    });
    expect(await list()).toEqual([...kept].sort());
    expect(await sweepLeftovers(path.join(dir, 'missing'))).toEqual({ restored: [], removed: [] });
  });

  it("never touches a name of an earlier scheme or a user's look-alike, even with the target missing", async () => {
    // A user's folder named like the old `.<name>-<n>-old` leftovers was once renamed over a missing target.
    const theirs = [
      '.app-2024-old',
      `.app-${DEAD_PID}-old`,
      `.app-${DEAD_PID}-tmp`,
      `.app.old-${DEAD_PID}-0a1b2c3d`,
      `.weights.bin.tmp-${DEAD_PID}-0a1b2c3d`,
    ];
    for (const name of theirs) {
      await fs.mkdir(path.join(dir, name));
      await fs.writeFile(path.join(dir, name, 'slide.png'), 'mine');
    }
    expect(await sweepLeftovers(dir, ['app', 'weights.bin'])).toEqual({ restored: [], removed: [] });
    expect(await sweepLeftovers(dir)).toEqual({ restored: [], removed: [] });
    expect(await list()).toEqual([...theirs].sort());
  });
});
