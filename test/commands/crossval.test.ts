// `malaria crossval` as a user sees it: the training flags it shares with train, and one line for bad input.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneErrorLine, runInProcess } from '../support/cli.js';
import { copySample, snapshotTree } from '../support/sample.js';
import { makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
const input = () => path.join(dir, 'cell_images');

beforeAll(async () => {
  dir = await makeTempDir('malaria-crossval-cli-');
  await copySample(input(), 3);
});

afterAll(async () => removeDir(dir));

/** The long flags a command's --help lists. */
async function helpFlags(command: string): Promise<string[]> {
  const result = await runInProcess([command, '--help']);
  return [...result.stdout.join('\n').matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((match) => match[1]);
}

describe('malaria crossval', () => {
  it('takes every training flag of train, declared once (same help text), besides its own', async () => {
    const train = await helpFlags('train');
    const crossval = await helpFlags('crossval');
    // Where train reads and writes, and its own resume (a crossval re-run continues by itself); --exclude filters a
    // split's training files.
    const trainOnly = ['--data', '--model-dir', '--plot', '--resume', '--exclude'];
    expect(crossval).toEqual(expect.arrayContaining(train.filter((flag) => !trainOnly.includes(flag))));
    expect(crossval).toEqual(expect.arrayContaining(['--input', '--out', '--folds', '--preset', '--force']));
    const line = async (command: string, flag: string) =>
      (await runInProcess([command, '--help'])).stdout
        .join('\n')
        .split('\n')
        .find((l) => l.includes(`${flag} `));
    for (const flag of ['--epochs', '--color', '--backend'])
      expect(await line('crossval', flag)).toBe(await line('train', flag));
  });

  it('refuses --out inside --input and --folds 1 with one line and exit 2, changing nothing', async () => {
    const before = await snapshotTree(input());
    const inside = await runInProcess(['crossval', '--input', input(), '--out', path.join(input(), 'cv')]);
    expect(inside.code).toBe(2);
    expectOneErrorLine(inside, /--out .* lies inside --input .*choose a separate folder/);
    const one = await runInProcess(['crossval', '--input', input(), '--out', path.join(dir, 'cv'), '--folds', '1']);
    expect(one.code).toBe(2);
    expectOneErrorLine(one, /--folds must be 2 or more/);
    const missing = await runInProcess([
      'crossval',
      '--input',
      path.join(dir, 'nothing'),
      '--out',
      path.join(dir, 'cv'),
    ]);
    expect(missing.code).toBe(2);
    expectOneErrorLine(missing, /input folder .*nothing not found/);
    expect(await snapshotTree(input())).toEqual(before);
  });
});
