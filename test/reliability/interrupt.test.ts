// Interruptions of the real CLI (child processes signalled at a chosen point): train stopped with Ctrl-C and
// resumed, runs that diverge, and build-dataset killed while copying or while swapping the new split into place.
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { buildDataset } from '../../src/dataset/build.js';
import { hasCheckpoint, loadCheckpointState } from '../../src/model/checkpoint.js';
import { loadHistory, loadModel, type TrainingHistory } from '../../src/model/io.js';
import { ctrlCAt, expectOneErrorLine, HOLD_HOOK, runChild, runInProcess, type CliResult } from '../support/cli.js';
import { TINY_MODEL_FLAGS } from '../support/models.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, snapshotTree, splitOptions } from '../support/sample.js';

const HOLDING = 'test-hold: holding';
const TRAIN = ['--backend', 'wasm', '--epochs', '4', ...TINY_MODEL_FLAGS, '--batch-size', '8'];
const SPLIT_ENTRIES = ['splits.csv', 'testing', 'training', 'validation'];

let dir: string;
const input = () => path.join(dir, 'cell_images');
const data = () => path.join(dir, 'data');
/** The model folder of the run stopped by Ctrl-C, as it was right after the stop. */
const stoppedCopy = () => path.join(dir, 'stopped-model');

beforeAll(async () => {
  dir = await makeTempDir('malaria-interrupt-');
  await copySample(input(), 12);
  await buildDataset(splitOptions(input(), data()));
});

afterAll(async () => removeDir(dir));

/** The lock files (`.<name>.malaria-lock`) in `folder`. */
async function locksIn(folder: string): Promise<string[]> {
  return (await fsp.readdir(folder)).filter((name) => name.endsWith('.malaria-lock'));
}

/** Entries of `output`, without the temporary folders of interrupted runs. */
async function visibleEntries(output: string): Promise<string[]> {
  return (await fsp.readdir(output)).filter((name) => !name.startsWith('.')).sort();
}

describe('train interrupted and resumed', () => {
  it('Ctrl-C during epoch 2 keeps the last completed epoch; --resume with the same flags runs the rest on the same schedule', async () => {
    const modelDir = path.join(dir, 'model');
    const args = ['train', '--data', data(), '--model-dir', modelDir, '--plot', path.join(dir, 'plot.png'), ...TRAIN];
    const dataBefore = await snapshotTree(data());

    // Epoch 2's first progress line stalls the process a second, so the Ctrl-C surely lands inside epoch 2.
    const stopped = await ctrlCAt(args, 'Epoch 2/4');
    expect(stopped.code, stopped.stderr.join('\n')).toBe(130);
    const completed = (await loadCheckpointState(modelDir)).epochsCompleted;
    expect(completed).toBe(1);
    expect(stopped.stderr.some((line) => line.startsWith('stopping: the last completed epoch stays saved'))).toBe(true);
    expect(stopped.stdout).toContain(
      `stopped after ${completed} of 4 epochs; continue with \`malaria train --resume --model-dir ${modelDir}\``,
    );
    // The checkpoint and the history of the completed epochs; no final model, no half-written checkpoint.
    expect((await fsp.readdir(modelDir)).sort()).toEqual(['checkpoint', 'history.json']);
    // The stopped run let go of --model-dir.
    expect(await locksIn(dir)).toEqual([]);
    const before: TrainingHistory = await loadHistory(modelDir);
    expect(before.lr).toHaveLength(completed);
    await fsp.cp(modelDir, stoppedCopy(), { recursive: true, preserveTimestamps: true });

    const resumed = await runChild([...args, '--resume']);
    expect(resumed.code, resumed.stderr.join('\n')).toBe(0);
    expect(resumed.stdout).toContain(`resuming after epoch ${completed} of 4 from ${modelDir}`);
    const epochLines = resumed.stdout.filter((line) => /^Epoch \d\/4 - /.test(line)).map((line) => line.slice(0, 9));
    expect(epochLines).toEqual(['Epoch 2/4', 'Epoch 3/4', 'Epoch 4/4'].slice(completed - 1));

    const history = await loadHistory(modelDir);
    expect(history.lr).toEqual([0.1, 0.075, 0.05, 0.025].map((lr) => expect.closeTo(lr, 12)));
    for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy'] as const) {
      expect(history[key], key).toHaveLength(4);
      // The epochs before the stop are the ones the stopped run recorded, not re-run.
      expect(history[key].slice(0, completed), key).toEqual(before[key]);
    }
    expect((await loadCheckpointState(modelDir)).epochsCompleted).toBe(4);
    await selectBackend('cpu');
    const saved = await loadModel(modelDir);
    saved.model.dispose();
    expect(saved.metadata.imageSize).toBe(16);
    expect(await snapshotTree(data())).toEqual(dataBefore);
  });
});

describe('train killed while writing a checkpoint', () => {
  it('SIGKILL with checkpoint 2 half-written: --resume continues from epoch 1 and clears the half-written one', async () => {
    const modelDir = path.join(dir, 'killed-model');
    const args = ['train', '--data', data(), '--model-dir', modelDir, ...TRAIN];
    const killed = await runChild(args, {
      nodeArgs: HOLD_HOOK,
      env: { MALARIA_TEST_HOLD: 'checkpoint:2' },
      onLine: (line, child) => void (line === HOLDING && child.kill('SIGKILL')),
    });
    expect(killed.signal).toBe('SIGKILL');
    // Epoch 2's checkpoint lies half-written in its temporary folder; the one of epoch 1 is whole.
    const entries = (await fsp.readdir(modelDir)).sort();
    expect(entries).toHaveLength(3);
    expect(entries[0]).toMatch(/^\.checkpoint\.malaria-tmp-\d+-[0-9a-f]{8}$/);
    expect(entries[1]).toBe('checkpoint');
    expect(entries[2]).toBe('history.json');
    expect((await fsp.readdir(path.join(modelDir, entries[0]))).sort()).toEqual([
      'model.json',
      'optimizer.bin',
      'optimizer.json',
      'weights.bin',
    ]);
    expect((await loadCheckpointState(modelDir)).epochsCompleted).toBe(1);
    expect((await loadHistory(modelDir)).lr).toEqual([0.1]);

    const resumed = await runInProcess([...args, '--resume']);
    expect(resumed.code, resumed.stderr.join('\n')).toBe(0);
    expect(resumed.stdout).toContain(`resuming after epoch 1 of 4 from ${modelDir}`);
    expect((await loadHistory(modelDir)).lr).toEqual([0.1, 0.075, 0.05, 0.025].map((lr) => expect.closeTo(lr, 12)));
    expect((await fsp.readdir(modelDir)).sort()).toEqual([
      'checkpoint',
      'history.json',
      'metadata.json',
      'model.json',
      'weights.bin',
    ]);
  });
});

describe('train diverges', () => {
  it('--lr 1e9: stops at once, one line saying it diverged and what to try, exit 1; no epoch completed, so nothing is saved', async () => {
    const modelDir = path.join(dir, 'diverged');
    const result = await runInProcess(['train', '--data', data(), '--model-dir', modelDir, ...TRAIN, '--lr', '1e9']);
    expect(result.code).toBe(1);
    expectOneErrorLine(
      result,
      /^malaria: the loss diverged (at|in) epoch 1\b.*; try a lower --lr than 1000000000, such as --lr 100000000; no epoch completed, so nothing was saved$/,
    );
    expect(result.stdout.some((line) => line.startsWith('Epoch 1/4 - '))).toBe(false);
    expect(await hasCheckpoint(modelDir)).toBe(false);
    expect(existsSync(path.join(modelDir, 'model.json'))).toBe(false);
  });

  it('diverging after a completed epoch keeps that checkpoint and history.json byte for byte', async () => {
    // The run stopped above, resumed with its saved learning rate raised to 1e9: it blows up in its next epoch.
    const modelDir = stoppedCopy();
    const { epochsCompleted } = await loadCheckpointState(modelDir);
    const checkpointFolder = path.join(modelDir, 'checkpoint');
    const state = JSON.parse(await fsp.readFile(path.join(checkpointFolder, 'state.json'), 'utf8'));
    state.recipe.lr = 1e9;
    await fsp.writeFile(path.join(checkpointFolder, 'state.json'), JSON.stringify(state));
    const before = await snapshotTree(modelDir);

    const result = await runInProcess(['train', '--data', data(), '--model-dir', modelDir, '--resume']);
    expect(result.code).toBe(1);
    expectOneErrorLine(
      result,
      new RegExp(
        `^malaria: the loss diverged (at|in) epoch ${epochsCompleted + 1}\\b.*; try a lower --lr than 1000000000, such as --lr 100000000, with --force to start over; the checkpoint of epoch ${epochsCompleted} in ${modelDir} is kept$`,
      ),
    );
    expect(await snapshotTree(modelDir)).toEqual(before);
  });
});

describe('build-dataset interrupted', () => {
  it('killed while copying: no split where train would look; the next run removes the leftovers and completes', async () => {
    const output = path.join(dir, 'first-split');
    const inputBefore = await snapshotTree(input());
    const killed = await runChild(['build-dataset', '--input', input(), '--output', output], {
      nodeArgs: HOLD_HOOK,
      env: { MALARIA_TEST_HOLD: 'copy:5' },
      onLine: (line, child) => void (line === HOLDING && child.kill('SIGKILL')),
    });
    expect(killed.signal).toBe('SIGKILL');
    // Only the hidden temporary folder of the killed run, holding the copies made so far.
    const entries = await fsp.readdir(output);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatch(/^\.split\.malaria-tmp-\d+-[0-9a-f]{8}$/);
    const train = await runInProcess(['train', '--data', output, '--model-dir', path.join(dir, 'never'), ...TRAIN]);
    expect(train.code).toBe(2);
    expectOneErrorLine(train, /training not found/);

    const next = await runInProcess(['build-dataset', '--input', input(), '--output', output]);
    expect(next.code, next.stderr.join('\n')).toBe(0);
    expect(next.stdout).toContain('removed 1 temporary folder left by an interrupted run');
    expect((await fsp.readdir(output)).sort()).toEqual(SPLIT_ENTRIES);
    expect(await snapshotTree(input())).toEqual(inputBefore);
  });

  it('Ctrl-C while copying a --force replacement: the previous split stays byte for byte; the next --force run cleans up', async () => {
    const output = path.join(dir, 'replaced-split');
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
    const stopped = await runChild(
      ['build-dataset', '--input', input(), '--output', output, '--force', '--seed', '2'],
      {
        nodeArgs: HOLD_HOOK,
        env: { MALARIA_TEST_HOLD: 'copy:7' },
        onLine: (line, child) => void (line === HOLDING && child.kill('SIGINT')),
      },
    );
    expect(stopped.signal).toBe('SIGINT');
    // Ended by the signal as before, its lock removed on the way out.
    expect(await locksIn(dir)).toEqual([]);
    const after = await snapshotTree(output);
    for (const key of after.keys()) if (key.startsWith('.split.malaria-tmp-')) after.delete(key);
    expect(after).toEqual(before);

    const next = await runInProcess([
      'build-dataset',
      '--input',
      input(),
      '--output',
      output,
      '--force',
      '--seed',
      '2',
    ]);
    expect(next.code, next.stderr.join('\n')).toBe(0);
    expect(next.stdout).toContain('removed 1 temporary folder left by an interrupted run');
    expect(await fsp.readdir(output).then((names) => names.sort())).toEqual(SPLIT_ENTRIES);
  });

  it('killed between moving the old split out and the new one in: the next run completes the new split', async () => {
    const output = path.join(dir, 'swapped-split');
    const reference = path.join(dir, 'reference-split');
    await buildDataset({
      input: input(),
      output,
      trainSplit: 0.8,
      valSplit: 0.1,
      seed: 1,
      force: false,
      groupBy: 'cell',
    });
    await buildDataset(splitOptions(input(), reference, { seed: 3 }));
    const killed = await runChild(['build-dataset', '--input', input(), '--output', output, '--force', '--seed', '3'], {
      nodeArgs: HOLD_HOOK,
      env: { MALARIA_TEST_HOLD: 'swap' },
      onLine: (line, child) => void (line === HOLDING && child.kill('SIGKILL')),
    });
    expect(killed.signal).toBe('SIGKILL');
    // The old split was moved out, the new one not yet in: nothing train could use.
    expect(await visibleEntries(output)).toEqual([]);

    // The next run (even one that then refuses to replace a split) finishes the killed run's move first.
    const next = await runInProcess(['build-dataset', '--input', input(), '--output', output]);
    expect(next.code).toBe(2);
    expectOneErrorLine(next, /already holds a split .*pass --force/);
    expect((await fsp.readdir(output)).sort()).toEqual(SPLIT_ENTRIES);
    expect(await fsp.readFile(path.join(output, 'splits.csv'), 'utf8')).toBe(
      await fsp.readFile(path.join(reference, 'splits.csv'), 'utf8'),
    );
    const files = async (root: string) =>
      [...(await snapshotTree(root)).entries()].map(([name, entry]) => [
        name,
        entry === 'dir' ? 'dir' : (entry as { sha256: string }).sha256,
      ]);
    expect(await files(output)).toEqual(await files(reference));
  });
});

describe('two runs on one folder', () => {
  it('build-dataset: a second run on the --output of a running one stops with one line, changing nothing', async () => {
    const output = path.join(dir, 'busy-split');
    const args = ['build-dataset', '--input', input(), '--output', output];
    let second: Promise<{ result: CliResult; before: unknown; after: unknown; pid?: number }> | undefined;
    const first = await runChild(args, {
      nodeArgs: HOLD_HOOK,
      env: { MALARIA_TEST_HOLD: 'copy:3' },
      onLine: (line, child) => {
        if (line !== HOLDING) return;
        // Everything but the running copy's own temporary folder (its other copies go on meanwhile).
        const snapshot = async () => {
          const tree = await snapshotTree(dir);
          for (const key of tree.keys()) if (/^busy-split\/\.split\.malaria-tmp-/.test(key)) tree.delete(key);
          return tree;
        };
        second = (async () => {
          try {
            const before = await snapshot();
            const result = await runInProcess([...args, '--force']);
            return { result, before, after: await snapshot(), pid: child.pid };
          } finally {
            child.kill('SIGINT');
          }
        })();
      },
    });
    expect(second, 'the first run never reached its copies').toBeDefined();
    const { result, before, after, pid } = await second!;
    expect(result.code).toBe(2);
    expectOneErrorLine(
      result,
      new RegExp(
        `^malaria: --output .*busy-split is in use by malaria \\(pid ${pid}\\); wait for it or stop it \\(if no malaria runs, delete .*\\.busy-split\\.malaria-lock\\)$`,
      ),
    );
    expect(after).toEqual(before);
    expect(first.signal).toBe('SIGINT');
    expect(await locksIn(dir)).toEqual([]);
  });

  it('a run killed outright leaves its lock; the next run takes it over, and leaves none', async () => {
    const output = path.join(dir, 'killed-lock-split');
    const args = ['build-dataset', '--input', input(), '--output', output];
    const killed = await runChild(args, {
      nodeArgs: HOLD_HOOK,
      env: { MALARIA_TEST_HOLD: 'copy:3' },
      onLine: (line, child) => void (line === HOLDING && child.kill('SIGKILL')),
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(await locksIn(dir)).toEqual(['.killed-lock-split.malaria-lock']);
    const next = await runInProcess(args);
    expect(next.code, next.stderr.join('\n')).toBe(0);
    expect(await locksIn(dir)).toEqual([]);
  });

  it('train: another train or evaluate --save-threshold on its --model-dir stops; Ctrl-C twice still removes the lock', async () => {
    const modelDir = path.join(dir, 'busy-model');
    const args = ['train', '--data', data(), '--model-dir', modelDir, ...TRAIN];
    let others: Promise<{ results: CliResult[]; pid?: number }> | undefined;
    let interrupted = 0;
    const first = await runChild(args, {
      nodeArgs: HOLD_HOOK,
      // Stalls forever while writing the first checkpoint: the first Ctrl-C cannot end it, the second must.
      env: { MALARIA_TEST_HOLD: 'checkpoint:1' },
      onLine: (line, child) => {
        if (line === HOLDING) {
          others = (async () => {
            try {
              const results = [
                await runInProcess([...args, '--force']),
                await runInProcess([
                  'evaluate',
                  '--data',
                  data(),
                  '--model-dir',
                  modelDir,
                  '--threshold',
                  '0.4',
                  '--save-threshold',
                ]),
              ];
              return { results, pid: child.pid };
            } finally {
              interrupted++;
              child.kill('SIGINT');
            }
          })();
        } else if (line.startsWith('stopping: ') && interrupted === 1) {
          interrupted++;
          child.kill('SIGINT');
        }
      },
    });
    expect(others, 'the first run never reached its checkpoint').toBeDefined();
    const { results, pid } = await others!;
    for (const result of results) {
      expect(result.code).toBe(2);
      expectOneErrorLine(
        result,
        new RegExp(`^malaria: --model-dir .*busy-model is in use by malaria \\(pid ${pid}\\);`),
      );
    }
    expect(interrupted).toBe(2);
    expect(first.exitCode).toBe(130);
    expect(await locksIn(dir)).toEqual([]);
  });
});
