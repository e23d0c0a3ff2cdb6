// Out of disk space while copying the split, saving a checkpoint or the model, or exporting: the write is made to
// fail half-way with ENOSPC (injected; a real full disk would need privileges CI may lack). Each time: one line
// that says the disk is full and names the folder, and nothing half-written left where it would pass as complete.
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import fse from 'fs-extra';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { buildDataset } from '../../src/dataset/build.js';
import { loadCheckpointState } from '../../src/model/checkpoint.js';
import { loadHistory, loadModel } from '../../src/model/io.js';
import { expectOneErrorLine, runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, snapshotTree, splitOptions } from '../support/sample.js';
import { saveBrightnessModel, TINY_MODEL_FLAGS } from '../support/models.js';

const DISK_FULL = /the disk is full; free some space and run the command again$/;

function enospc(syscall: string, file: string, dest?: string): NodeJS.ErrnoException {
  const target = dest ? `'${file}' -> '${dest}'` : `'${file}'`;
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall} ${target}`), {
    code: 'ENOSPC',
    errno: -28,
    syscall,
    path: file,
    dest,
  });
}

/** The `nth` file copy writes half the file, then fails as a full disk does. */
function diskFullOnCopy(nth: number): void {
  let copies = 0;
  const realCopy = fse.copy.bind(fse) as (src: string, dest: string, options?: object) => Promise<void>;
  vi.spyOn(fse, 'copy').mockImplementation((async (src: string, dest: string, options?: object) => {
    if (++copies !== nth) return realCopy(src, dest, options);
    const bytes = await fsp.readFile(src);
    await fsp.writeFile(dest, bytes.subarray(0, bytes.length >> 1));
    throw enospc('copyfile', src, dest);
  }) as unknown as typeof fse.copy);
}

/** Files opened for writing whose path passes `when` get half their bytes written, then ENOSPC. */
function diskFullOnOpen(when: (file: string) => boolean): void {
  const realOpen = fsp.open.bind(fsp) as (file: string, flags?: string) => Promise<FileHandle>;
  vi.spyOn(fsp, 'open').mockImplementation((async (file: string, flags?: string) => {
    const handle = await realOpen(file, flags);
    if (flags !== 'w' || !when(String(file))) return handle;
    const realWrite = handle.writeFile.bind(handle);
    handle.writeFile = async (data: string | Uint8Array) => {
      const bytes = Buffer.from(data as Uint8Array);
      await realWrite(bytes.subarray(0, bytes.length >> 1));
      throw enospc('write', String(file));
    };
    return handle;
  }) as unknown as typeof fsp.open);
}

/** Every path under `root` that looks like an unfinished write (temporary files and folders). */
async function leftovers(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fsp.readdir(root, { recursive: true }))
    if (/tmp|\.old|\.replaced/.test(entry)) found.push(entry);
  return found;
}

let dir: string;
const input = () => path.join(dir, 'cell_images');
const data = () => path.join(dir, 'data');
const TRAIN = ['--backend', 'wasm', '--epochs', '2', ...TINY_MODEL_FLAGS, '--batch-size', '8'];

beforeAll(async () => {
  dir = await makeTempDir('malaria-disk-full-');
  await copySample(input(), 12);
  await buildDataset(splitOptions(input(), data(), { valSplit: 0.2 }));
});

afterAll(async () => removeDir(dir));

describe('build-dataset on a full disk', () => {
  it('a first run: one line naming the output, no split and no temporary folder left', async () => {
    const output = path.join(dir, 'first');
    const inputBefore = await snapshotTree(input());
    diskFullOnCopy(5);
    const result = await runInProcess(['build-dataset', '--input', input(), '--output', output]);
    expect(result.code).toBe(1);
    expectOneErrorLine(result, new RegExp(`^malaria: cannot write the split into ${output}: ${DISK_FULL.source}`));
    expect(await fsp.readdir(output)).toEqual([]);
    expect(await snapshotTree(input())).toEqual(inputBefore);
  });

  it('replacing a split with --force: the old split stays exactly as it was', async () => {
    const output = path.join(dir, 'replace');
    await buildDataset({
      input: input(),
      output,
      trainSplit: 0.8,
      valSplit: 0.1,
      seed: 1,
      force: false,
      groupBy: 'cell',
    });
    const before = await snapshotTree(output);
    diskFullOnCopy(10);
    const result = await runInProcess([
      'build-dataset',
      '--input',
      input(),
      '--output',
      output,
      '--force',
      '--seed',
      '2',
    ]);
    expect(result.code).toBe(1);
    expectOneErrorLine(result, DISK_FULL);
    expect(await snapshotTree(output)).toEqual(before);
  });
});

describe('train on a full disk', () => {
  it('while checkpointing epoch 2: the checkpoint of epoch 1 stays whole; while saving the model: the checkpoint stays, no half model; --resume then finishes', async () => {
    await selectBackend('wasm');
    const modelDir = path.join(dir, 'model');
    const dataBefore = await snapshotTree(data());

    // Epoch 1's checkpoint is written; the first file of epoch 2's fails half-way.
    const checkpointFolders = new Set<string>();
    diskFullOnOpen((file) => {
      const folder = path.basename(path.dirname(file));
      if (folder.startsWith('.checkpoint.malaria-tmp-')) checkpointFolders.add(folder);
      return checkpointFolders.size === 2;
    });
    const first = await runInProcess(['train', '--data', data(), '--model-dir', modelDir, ...TRAIN]);
    expect(first.code).toBe(1);
    expectOneErrorLine(
      first,
      new RegExp(
        `^malaria: cannot save the checkpoint in ${modelDir} \\(the previous one is kept\\): ${DISK_FULL.source}`,
      ),
    );
    expect(first.stdout.filter((line) => line.startsWith('Epoch '))).toHaveLength(1);
    expect((await fsp.readdir(modelDir)).sort()).toEqual(['checkpoint', 'history.json']);
    expect(await leftovers(modelDir)).toEqual([]);
    expect((await loadCheckpointState(modelDir)).epochsCompleted).toBe(1);
    expect((await loadHistory(modelDir)).lr).toHaveLength(1);

    // Resumed: epoch 2 completes and is checkpointed, then weights.bin of the final model fails half-way.
    diskFullOnOpen((file) => path.basename(file).startsWith('.weights.bin.malaria-tmp-'));
    const second = await runInProcess(['train', '--data', data(), '--model-dir', modelDir, '--resume', ...TRAIN]);
    expect(second.code).toBe(1);
    expectOneErrorLine(second, new RegExp(`^malaria: cannot save the model in ${modelDir}: ${DISK_FULL.source}`));
    // No model.json, weights.bin or metadata.json that could pass for a finished model.
    expect((await fsp.readdir(modelDir)).sort()).toEqual(['checkpoint', 'history.json']);
    expect(await leftovers(modelDir)).toEqual([]);
    expect((await loadCheckpointState(modelDir)).epochsCompleted).toBe(2);

    // With space again, --resume saves the model from the last checkpoint.
    const third = await runInProcess(['train', '--data', data(), '--model-dir', modelDir, '--resume', ...TRAIN]);
    expect(third.code, third.stderr.join('\n')).toBe(0);
    expect(third.stdout).toContain(`resuming after epoch 2 of 2 from ${modelDir}`);
    const saved = await loadModel(modelDir);
    saved.model.dispose();
    expect((await loadHistory(modelDir)).lr).toEqual([0.1, 0.05]);
    expect(await snapshotTree(data())).toEqual(dataBefore);
  });
});

describe('evaluate --save-threshold and export on a full disk', () => {
  it('evaluate --save-threshold: one line naming metadata.json, which stays as it was', async () => {
    const modelDir = path.join(dir, 'threshold-model');
    await selectBackend('cpu');
    await saveBrightnessModel(modelDir);
    const before = await snapshotTree(modelDir);
    diskFullOnOpen((file) => path.basename(file).startsWith('.metadata.json.malaria-tmp-'));
    const args = [
      'evaluate',
      '--data',
      data(),
      '--model-dir',
      modelDir,
      '--backend',
      'cpu',
      '--threshold',
      '0.3',
      '--save-threshold',
    ];
    const result = await runInProcess(args);
    expect(result.code).toBe(1);
    expect(result.stderr.filter((line) => line.startsWith('malaria:'))).toEqual([
      `malaria: ${path.join(modelDir, 'metadata.json')}: the disk is full; free some space and run the command again`,
    ]);
    expect(await snapshotTree(modelDir)).toEqual(before);
  });

  it('export: one line naming --out, and no --out folder or temporary folder left', async () => {
    const modelDir = path.join(dir, 'brightness');
    await selectBackend('cpu');
    await saveBrightnessModel(modelDir);
    const out = path.join(dir, 'exports', 'uint8');
    await fsp.mkdir(path.dirname(out));
    diskFullOnOpen((file) => path.basename(file) === 'weights.bin');
    const result = await runInProcess([
      'export',
      '--model-dir',
      modelDir,
      '--out',
      out,
      '--quantize',
      'uint8',
      '--backend',
      'cpu',
    ]);
    expect(result.code).toBe(1);
    expectOneErrorLine(
      result,
      new RegExp(`^malaria: cannot write the exported model into ${out}: ${DISK_FULL.source}`),
    );
    expect(await fsp.readdir(path.dirname(out))).toEqual([]);
  });
});
