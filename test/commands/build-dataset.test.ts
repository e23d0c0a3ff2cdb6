import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample } from '../support/sample.js';

describe('malaria build-dataset (CLI)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => removeDir(dir));

  it('a bad flag value exits 2 with one line naming the flag and the fix (child process)', async () => {
    const { code, stdout, stderr } = await runCli(['build-dataset', '--train-split', '1.5']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/--train-split.*'1\.5'.*between 0 and 1/);
  });

  it('a missing input folder exits 2 with one line (child process)', async () => {
    const missing = path.join(dir, 'nowhere');
    const { code, stderr } = await runCli(['build-dataset', '--input', missing, '--output', path.join(dir, 'out')]);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      `malaria: input folder ${missing} not found; run \`malaria download\` to fetch the images or pass --input <folder with Parasitized/ and Uninfected/>`,
    ]);
  });

  it('rejects other bad values with exit code 2', async () => {
    for (const args of [
      ['--val-split', '0'],
      ['--val-split', 'abc'],
      ['--seed', '-1'],
      ['--seed', '1.5'],
      ['--group-by', 'slide'],
    ]) {
      const { code, stderr } = await runInProcess(['build-dataset', '--input', dir, ...args]);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr[0], args.join(' ')).toContain(args[0]);
    }
  });

  it('builds the split, prints the table, and refuses a second run without --force', async () => {
    const input = path.join(dir, 'cell_images');
    const output = path.join(dir, 'malaria');
    await copySample(input, 10);
    const first = await runInProcess(['build-dataset', '--input', input, '--output', output, '--group-by', 'patient']);
    expect(first.code).toBe(0);
    const table = first.stdout.join('\n');
    expect(table).toMatch(/^split\s+Parasitized\s+Uninfected\s+total\s+balance\s+patients$/m);
    expect(table).toMatch(/^total\s+10\s+10\s+20\s+50\.0% \/ 50\.0%/m);
    expect((await fsp.readdir(output)).sort()).toEqual(['splits.csv', 'testing', 'training', 'validation']);

    const second = await runInProcess(['build-dataset', '--input', input, '--output', output]);
    expect(second.code).toBe(2);
    expect(second.stderr).toEqual([
      `malaria: ${output} already holds a split (training, validation, testing, splits.csv); pass --force to replace it with a new one`,
    ]);

    const forced = await runInProcess([
      'build-dataset',
      '--input',
      input,
      '--output',
      output,
      '--force',
      '--seed',
      '7',
    ]);
    expect(forced.code).toBe(0);
    expect(forced.stdout.at(-1)).toMatch(/\(replaced the previous training, validation, testing, splits\.csv\)$/);
  });
});
