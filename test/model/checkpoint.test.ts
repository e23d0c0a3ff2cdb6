import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { hasCheckpoint, loadCheckpoint, loadCheckpointState, saveCheckpoint } from '../../src/model/checkpoint.js';
import { sweepModelFolder } from '../../src/model/io.js';
import { expectUserError } from '../support/errors.js';
import { trackModels } from '../support/tensors.js';
import { DEAD_PID, withTempDir } from '../support/temp.js';
import { rewriteAsVersion1, type Version1Settings } from '../support/checkpoints.js';
import { maxAbsDifference, tinyRecipe, trainedModel, weightValues } from '../support/models.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

const track = trackModels();

describe('checkpoints', () => {
  it('restores weights, optimizer accumulators, epoch, history, the recipe and the data folder', async () => {
    await withTempDir(async (dir) => {
      const { model, optimizer } = await trainedModel(9);
      track(model);
      const history = { loss: [0.7], accuracy: [0.5], val_loss: [0.6], val_accuracy: [0.5], lr: [0.05] };
      const recipe = tinyRecipe({ batchSize: 8 });
      expect(await hasCheckpoint(dir)).toBe(false);
      await expectUserError(loadCheckpoint(dir), /has no checkpoint to resume from/);
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 1, history, recipe, data: 'malaria' });
      expect(await hasCheckpoint(dir)).toBe(true);
      expect(await fs.readdir(dir)).toEqual(['checkpoint']);

      const checkpoint = await loadCheckpoint(dir);
      track(checkpoint.model);
      expect(checkpoint.epochsCompleted).toBe(1);
      expect(checkpoint.history).toEqual(history);
      expect(checkpoint.recipe).toEqual(recipe);
      expect(checkpoint.data).toBe('malaria');
      expect(maxAbsDifference(weightValues(checkpoint.model), weightValues(model))).toBe(0);
      const saved = await optimizer.getWeights();
      // iterations + one momentum accumulator per trainable variable
      expect(saved).toHaveLength(1 + model.trainableWeights.length);
      expect(checkpoint.optimizerWeights.map((w) => w.name)).toEqual(saved.map((w) => w.name));
      expect((await checkpoint.optimizerWeights[0].tensor.data())[0]).toBe(1);
      const accumulators = (weights: typeof saved) => weights.slice(1).map((w) => w.tensor.dataSync() as Float32Array);
      expect(accumulators(saved).some((values) => values.some((v) => v !== 0))).toBe(true);
      expect(maxAbsDifference(accumulators(checkpoint.optimizerWeights), accumulators(saved))).toBe(0);
      tf.dispose([saved[0].tensor, ...checkpoint.optimizerWeights.map((w) => w.tensor)]);
      optimizer.dispose();
    });
  });

  it('replaces the previous checkpoint and survives a kill between the two renames', async () => {
    await withTempDir(async (dir) => {
      const { model, optimizer } = await trainedModel(10);
      track(model);
      const recipe = tinyRecipe();
      const history = { loss: [1], accuracy: [0], val_loss: [1], val_accuracy: [0], lr: [0.1] };
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 1, history, recipe });
      // A stale temporary folder of a killed run is cleared by the next save; a name an earlier version used is
      // not this version's to judge, and stays.
      await fs.mkdir(path.join(dir, `.checkpoint.malaria-tmp-${DEAD_PID}-0123abcd`));
      await fs.mkdir(path.join(dir, `checkpoint.tmp-${DEAD_PID}-0123abcd`));
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 2, history, recipe });
      expect((await fs.readdir(dir)).sort()).toEqual(['checkpoint', `checkpoint.tmp-${DEAD_PID}-0123abcd`]);
      await fs.rm(path.join(dir, `checkpoint.tmp-${DEAD_PID}-0123abcd`), { recursive: true });
      let checkpoint = await loadCheckpoint(dir);
      track(checkpoint.model);
      tf.dispose(checkpoint.optimizerWeights.map((w) => w.tensor));
      expect(checkpoint.epochsCompleted).toBe(2);

      // Killed between the two renames: the checkpoint moved aside, the new one not in place. The sweep that
      // train runs first puts it back.
      await fs.rename(path.join(dir, 'checkpoint'), path.join(dir, `.checkpoint.malaria-old-${DEAD_PID}-0123abcd`));
      expect(await hasCheckpoint(dir)).toBe(false);
      expect((await sweepModelFolder(dir)).restored).toEqual([
        `.checkpoint.malaria-old-${DEAD_PID}-0123abcd -> checkpoint`,
      ]);
      checkpoint = await loadCheckpoint(dir);
      track(checkpoint.model);
      tf.dispose(checkpoint.optimizerWeights.map((w) => w.tensor));
      expect(checkpoint.epochsCompleted).toBe(2);

      // An earlier version's name for the same moment (checkpoint -> checkpoint.old) is still read.
      await fs.rename(path.join(dir, 'checkpoint'), path.join(dir, 'checkpoint.old'));
      checkpoint = await loadCheckpoint(dir);
      track(checkpoint.model);
      tf.dispose(checkpoint.optimizerWeights.map((w) => w.tensor));
      expect(checkpoint.epochsCompleted).toBe(2);
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 3, history, recipe });
      expect(await fs.readdir(dir)).toEqual(['checkpoint']);
      optimizer.dispose();
    });
  });

  it('checks the checkpoint folder right before replacing it: a file someone put there stops the save, kept', async () => {
    await withTempDir(async (dir) => {
      const { model, optimizer } = await trainedModel(11);
      track(model);
      const recipe = tinyRecipe();
      const history = { loss: [1], accuracy: [0], val_loss: [1], val_accuracy: [0], lr: [0.1] };
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 1, history, recipe });
      const notes = path.join(dir, 'checkpoint', 'notes.txt');
      const open = fs.open.bind(fs);
      // While the next checkpoint is written, someone saves notes into the current one.
      const spy = vi.spyOn(fs, 'open').mockImplementation(async (file, ...rest) => {
        if (path.basename(path.dirname(String(file))).startsWith('.checkpoint.malaria-tmp-'))
          await fs.writeFile(notes, 'epoch 1 looked fine').catch(() => undefined);
        return open(file, ...rest);
      });
      try {
        await expectUserError(
          saveCheckpoint(dir, { model, optimizer, epochsCompleted: 2, history, recipe }),
          /holds files that are not a model .*\(checkpoint\/notes\.txt is not a file this tool writes\); nothing was changed/,
        );
      } finally {
        spy.mockRestore();
      }
      expect(await fs.readFile(notes, 'utf8')).toBe('epoch 1 looked fine');
      expect(await fs.readdir(dir)).toEqual(['checkpoint']);
      await fs.rm(notes);
      const checkpoint = await loadCheckpoint(dir);
      track(checkpoint.model);
      tf.dispose(checkpoint.optimizerWeights.map((w) => w.tensor));
      expect(checkpoint.epochsCompleted).toBe(1);
      optimizer.dispose();
    });
  });
});

describe('checkpoints of an older version (state.json version 1, before the recipe was saved whole)', () => {
  const history = {
    loss: [0.7, 0.6],
    accuracy: [0.5, 0.6],
    val_loss: [0.6, 0.5],
    val_accuracy: [0.5, 0.6],
    lr: [0.2, 0.1],
  };
  // Every setting away from the tutorial's, so a field mapped to the wrong one shows.
  const recipe = tinyRecipe({
    batchSize: 16,
    lr: 0.2,
    schedule: 'cosine',
    warmup: 0.5,
    labelSmoothing: 0.1,
    l2: 1e-4,
    ema: 0.9,
    rotation: 180,
    color: 0.2,
    resize: 'area',
    stain: 'balance',
    preset: 'laptop',
    positive: 'Parasitized',
    excluded: { sha256: 'ab'.repeat(32), count: 3, file: 'suspects.csv' },
  });
  const saveOld = async (dir: string, edit?: (settings: Version1Settings) => void) => {
    const { model, optimizer } = await trainedModel(12);
    await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 2, history, recipe, data: 'cells' });
    model.dispose();
    optimizer.dispose();
    await rewriteAsVersion1(dir, { edit });
  };

  it('reads its settings as the recipe and data folder of the run', async () => {
    await withTempDir(async (dir) => {
      await saveOld(dir);
      const written = JSON.parse(await fs.readFile(path.join(dir, 'checkpoint', 'state.json'), 'utf8'));
      expect(written).toMatchObject({
        version: 1,
        settings: { initialLr: 0.2, run: { data: 'cells', preset: 'laptop' } },
      });
      expect(await loadCheckpointState(dir)).toEqual({ epochsCompleted: 2, history, recipe, data: 'cells' });
      const checkpoint = await loadCheckpoint(dir);
      track(checkpoint.model);
      tf.dispose(checkpoint.optimizerWeights.map((w) => w.tensor));
      expect(checkpoint.recipe).toEqual(recipe);
    });
  });

  it('gives what the oldest files lack the values those versions resumed with, and refuses what it cannot say', async () => {
    await withTempDir(async (dir) => {
      await saveOld(dir, (settings) => {
        for (const key of ['schedule', 'warmupEpochs', 'labelSmoothing', 'ema', 'resize', 'stain', 'positiveClass'])
          delete settings[key];
        for (const key of ['rotation', 'color', 'preset', 'excluded']) delete settings.run[key];
        // What the first versions stored: the micro-batch of the process that started the run, not the run's.
        settings.microBatchSize = 8;
      });
      const { positive: _none, excluded: _neither, ...kept } = recipe;
      expect((await loadCheckpointState(dir)).recipe).toEqual({
        ...kept,
        schedule: 'linear',
        warmup: 0,
        labelSmoothing: 0,
        ema: 0,
        resize: 'nearest',
        stain: 'keep',
        rotation: 20,
        color: 0,
        preset: 'tutorial',
      });

      const unreadable =
        /checkpoint\/state\.json is not a checkpoint this version can resume; start a new run with `malaria train`$/;
      for (const edit of [
        (settings: Version1Settings) => void (settings.power = 2),
        (settings: Version1Settings) => void delete settings.architecture,
        (settings: Version1Settings) => void delete settings.run.batchSize,
      ]) {
        await saveOld(dir, edit);
        await expectUserError(loadCheckpointState(dir), unreadable, 1);
      }
    });
  });
});
