import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { assertSameExclusion, matchExcludeList, readExcludeList } from '../../src/input/exclude-list.js';
import { makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('malaria-exclude-');
});
afterAll(async () => removeDir(dir));

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** A training listing of small text files standing for images: Parasitized/a.png, b.png; Uninfected/a.png, c.png. */
async function listing() {
  const classNames = ['Parasitized', 'Uninfected'];
  const files = [];
  for (const [label, names] of [
    [0, ['a.png', 'b.png']],
    [1, ['a.png', 'c.png']],
  ] as const) {
    for (const name of names) {
      const file = path.join(dir, 'training', classNames[label], name);
      await fsp.mkdir(path.dirname(file), { recursive: true });
      await fsp.writeFile(file, `${classNames[label]} ${name}`);
      files.push({ path: file, label });
    }
  }
  return { classNames, files };
}

async function csv(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await fsp.writeFile(file, text);
  return file;
}

describe('readExcludeList and matchExcludeList', () => {
  it('with a sha256 column, matches by content whatever the file column says, and hashes the list', async () => {
    const text = `file,sha256,label\nrenamed.png,${sha('Uninfected c.png')},Parasitized\nx.png,${'0'.repeat(64)},Uninfected\n`;
    const list = await readExcludeList(await csv('by-hash.csv', text));
    expect(list.by).toBe('sha256');
    expect(list.sha256).toBe(sha(text));
    const training = await listing();
    const { paths, unmatched } = await matchExcludeList(list, training);
    expect([...paths]).toEqual([training.files[3].path]);
    expect(unmatched).toBe(1);
  });

  it('without one, matches the file name within the label column’s class, or in any class without a label', async () => {
    const training = await listing();
    const labelled = await readExcludeList(
      await csv('labelled.csv', 'patient,file,label\nC1,/elsewhere/Uninfected/a.png,Uninfected\nC2,b.png,Uninfected\n'),
    );
    expect(labelled.by).toBe('name');
    const byLabel = await matchExcludeList(labelled, training);
    // a.png of Uninfected only; b.png is Parasitized here, so it is not the file listed.
    expect([...byLabel.paths]).toEqual([training.files[2].path]);
    expect(byLabel.unmatched).toBe(1);

    const unlabelled = await readExcludeList(await csv('names.csv', 'file\r\nsub\\a.png\r\n\r\n'));
    const byName = await matchExcludeList(unlabelled, training);
    expect([...byName.paths]).toEqual([training.files[0].path, training.files[2].path]);
    expect(byName.unmatched).toBe(0);
  });

  it('refuses a missing file, a header without file or sha256, and a bad sha256, in one line each', async () => {
    await expect(readExcludeList(path.join(dir, 'missing.csv'))).rejects.toThrow(
      `--exclude ${path.join(dir, 'missing.csv')}: not found`,
    );
    await expect(readExcludeList(await csv('none.csv', 'name\na.png\n'))).rejects.toThrow(
      /has no "file" or "sha256" column in its header/,
    );
    await expect(readExcludeList(await csv('short.csv', 'sha256\nabc\n'))).rejects.toThrow(
      /short\.csv, line 2: "abc" is not a sha256/,
    );
  });
});

describe('assertSameExclusion', () => {
  const saved = { file: 'old.csv', sha256: 'a'.repeat(64), count: 3 };
  const list = (hash: string) => ({
    file: 'new.csv',
    sha256: hash,
    by: 'name' as const,
    keys: new Set<string>(),
    withLabel: false,
  });

  it('lets a resume continue with the same list, or with none when there was none', () => {
    expect(() => assertSameExclusion(saved, list('a'.repeat(64)))).not.toThrow();
    expect(() => assertSameExclusion(undefined, undefined)).not.toThrow();
  });

  it('refuses a list added, dropped or changed', () => {
    expect(() => assertSameExclusion(undefined, list('b'.repeat(64)))).toThrow(UserError);
    expect(() => assertSameExclusion(saved, undefined)).toThrow('resume with --exclude old.csv');
    expect(() => assertSameExclusion(saved, list('b'.repeat(64)))).toThrow(
      /--exclude new\.csv \(sha256 bbbbbbbbbbbb\) is not the list the interrupted run left out \(old\.csv, sha256 aaaaaaaaaaaa\)/,
    );
  });
});
