import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import { sweepModelFolder } from '../../src/model/io.js';
import { expectUserError } from '../support/errors.js';
import { trackModels } from '../support/tensors.js';
import { DEAD_PID, withTempDir } from '../support/temp.js';
import { maxAbsDifference, tinySettings, trainedModel, weightValues } from '../support/models.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

const track = trackModels();

describe('checkpoints', () => {
  it('restores weights, optimizer accumulators, epoch, history and settings', async () => {
    await withTempDir(async (dir) => {
      const { model, optimizer } = await trainedModel(9);
      track(model);
      const history = { loss: [0.7], accuracy: [0.5], val_loss: [0.6], val_accuracy: [0.5], lr: [0.05] };
      const settings = tinySettings({ run: { data: 'malaria', batchSize: 8 } });
      expect(await hasCheckpoint(dir)).toBe(false);
      await expectUserError(loadCheckpoint(dir), /has no checkpoint to resume from/);
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 1, history, settings });
      expect(await hasCheckpoint(dir)).toBe(true);
      expect(await fs.readdir(dir)).toEqual(['checkpoint']);

      const checkpoint = await loadCheckpoint(dir);
      track(checkpoint.model);
      expect(checkpoint.epochsCompleted).toBe(1);
      expect(checkpoint.history).toEqual(history);
      expect(checkpoint.settings).toEqual(settings);
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
      const settings = tinySettings();
      const history = { loss: [1], accuracy: [0], val_loss: [1], val_accuracy: [0], lr: [0.1] };
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 1, history, settings });
      // A stale temporary folder of a killed run is cleared by the next save; a name an earlier version used is
      // not this version's to judge, and stays.
      await fs.mkdir(path.join(dir, `.checkpoint.malaria-tmp-${DEAD_PID}-0123abcd`));
      await fs.mkdir(path.join(dir, `checkpoint.tmp-${DEAD_PID}-0123abcd`));
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 2, history, settings });
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
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 3, history, settings });
      expect(await fs.readdir(dir)).toEqual(['checkpoint']);
      optimizer.dispose();
    });
  });

  it('checks the checkpoint folder right before replacing it: a file someone put there stops the save, kept', async () => {
    await withTempDir(async (dir) => {
      const { model, optimizer } = await trainedModel(11);
      track(model);
      const settings = tinySettings();
      const history = { loss: [1], accuracy: [0], val_loss: [1], val_accuracy: [0], lr: [0.1] };
      await saveCheckpoint(dir, { model, optimizer, epochsCompleted: 1, history, settings });
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
          saveCheckpoint(dir, { model, optimizer, epochsCompleted: 2, history, settings }),
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
