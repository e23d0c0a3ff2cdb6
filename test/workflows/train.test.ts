// runTraining driven as a library, without the CLI: its lines go to a reporter, a stop comes from an AbortSignal.
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { buildDataset } from '../../src/dataset/build.js';
import { REFERENCE_CELL_COLOUR } from '../../src/input/stain.js';
import { hasCheckpoint, loadCheckpointState } from '../../src/model/checkpoint.js';
import { loadHistory, loadMetadata, loadModel } from '../../src/model/io.js';
import { runTraining, type TrainFlags } from '../../src/workflows/train.js';
import { silentReporter, type Reporter } from '../../src/report/reporter.js';
import { rewriteAsVersion1 } from '../support/checkpoints.js';
import { maxAbsDifference, weightValues } from '../support/models.js';
import { copySample, splitOptions } from '../support/sample.js';
import { makeTempDir, removeDir } from '../support/temp.js';

let dir: string;
const data = () => path.join(dir, 'data');

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-run-training-');
  await copySample(path.join(dir, 'cell_images'), 12);
  await buildDataset(splitOptions(path.join(dir, 'cell_images'), data()));
});

afterAll(async () => removeDir(dir));

const options = (modelDir: string): TrainFlags => ({
  data: data(),
  modelDir,
  plot: path.join(dir, `${path.basename(modelDir)}.png`),
  epochs: 2,
  batchSize: 8,
  lr: 0.05,
  imageSize: 16,
  resize: 'nearest',
  stain: 'keep',
  stages: [1, 1, 1],
  filters: [4, 4, 8, 8],
  schedule: 'linear',
  warmup: 0,
  labelSmoothing: 0,
  l2: 5e-4,
  ema: 0,
  rotation: 20,
  color: 0,
  seed: 42,
  backend: 'cpu',
  preset: 'tutorial',
});

/** Events that stop the run once its first epoch is checkpointed: what --resume continues. */
const stopAfterEpoch1 = () => {
  const controller = new AbortController();
  const report = { ...recorder(), result: (t: string) => void (/^Epoch 1\/2 - /.test(t) && controller.abort()) };
  return { report, interrupt: () => ({ signal: controller.signal, release: () => {} }) };
};

/** A reporter that keeps what was reported, by channel. */
function recorder(): Reporter & { results: string[]; notes: string[] } {
  const results: string[] = [];
  const notes: string[] = [];
  return {
    ...silentReporter,
    results,
    notes,
    result: (t) => void results.push(t),
    detail: (t) => void results.push(t),
    note: (t) => void notes.push(t),
  };
}

describe('runTraining', () => {
  it('trains, reports through the reporter (the backend line as a note) and writes the plot', async () => {
    const report = recorder();
    const outcome = await runTraining(options(path.join(dir, 'model')), { report });
    expect(outcome).toEqual({ stoppedEarly: false, epochsCompleted: 2 });
    expect(report.notes.filter((line) => line.startsWith('backend: cpu'))).toHaveLength(1);
    expect(report.results.filter((line) => /^Epoch \d\/2 - /.test(line))).toHaveLength(2);
    expect(report.results).toContain(`saved the model to ${path.join(dir, 'model')}`);
    expect(existsSync(path.join(dir, 'model.png'))).toBe(true);
    // The testing report resamples the patients of the testing split (the sample's file names carry their ids).
    expect(report.results.join('\n')).toMatch(/\nbalanced accuracy: [\d.]+% \(.*over \d+ patients?\b.*\n/);
  });

  it('with resize area and stain balance, saves them in metadata.json; a resume keeps them and refuses others', async () => {
    const modelDir = path.join(dir, 'area');
    const controller = new AbortController();
    // Stop after the first epoch: its checkpoint is what --resume continues.
    const report = { ...recorder(), result: (t: string) => void (/^Epoch 1\/2 - /.test(t) && controller.abort()) };
    const interrupt = () => ({ signal: controller.signal, release: () => {} });
    const stopped = await runTraining(
      { ...options(modelDir), resize: 'area', stain: 'balance' },
      { report, interrupt },
    );
    expect(stopped).toEqual({ stoppedEarly: true, epochsCompleted: 1 });

    const resumeWith = (resize: 'nearest' | 'area', given: (key: string) => boolean) =>
      runTraining({ ...options(modelDir), resize, resume: true }, { report: recorder(), given });
    await expect(resumeWith('nearest', (key) => key === 'resize')).rejects.toThrow(
      "--resize nearest differs from the interrupted run's area: resume with the same flags, or leave --resize out",
    );
    await expect(
      runTraining(
        { ...options(modelDir), resize: 'area', stain: 'keep', resume: true },
        { report: recorder(), given: (key) => key === 'stain' },
      ),
    ).rejects.toThrow("--stain keep differs from the interrupted run's balance");
    // Not given: the flags' defaults (nearest, keep) give way to the checkpoint's area and balance.
    expect(await resumeWith('nearest', () => false)).toEqual({ stoppedEarly: false, epochsCompleted: 2 });
    const metadata = await loadMetadata(modelDir);
    expect([metadata.resize, metadata.stain]).toEqual(['area', 'balance']);
    // The colour the cells were balanced to is saved with them, so later uses balance to it.
    const saved = JSON.parse(await fsp.readFile(path.join(modelDir, 'metadata.json'), 'utf8'));
    expect(saved.stainReference).toEqual([...REFERENCE_CELL_COLOUR]);
  });

  it('keeps the positive class through a resume, refuses another, and asks for it when an older checkpoint lacks it', async () => {
    // Healthy and Sick: the sample's classes renamed, so no class is Parasitized.
    const cells = path.join(dir, 'sick-cells');
    await copySample(cells, 12);
    await fsp.rename(path.join(cells, 'Parasitized'), path.join(cells, 'Sick'));
    await fsp.rename(path.join(cells, 'Uninfected'), path.join(cells, 'Healthy'));
    const sickData = path.join(dir, 'sick-data');
    await buildDataset(splitOptions(cells, sickData));
    const sick = (modelDir: string, positive?: string): TrainFlags => ({
      ...options(modelDir),
      data: sickData,
      positive,
    });

    const modelDir = path.join(dir, 'sick');
    expect(await runTraining(sick(modelDir, 'Sick'), stopAfterEpoch1())).toMatchObject({ stoppedEarly: true });
    await expect(
      runTraining(
        { ...sick(modelDir, 'Healthy'), resume: true },
        { report: recorder(), given: (key) => key === 'positive' },
      ),
    ).rejects.toThrow("--positive Healthy differs from the interrupted run's Sick");
    expect(await runTraining({ ...sick(modelDir), resume: true }, { report: recorder(), given: () => false })).toEqual({
      stoppedEarly: false,
      epochsCompleted: 2,
    });
    expect((await loadMetadata(modelDir)).positiveClass).toBe('Sick');

    // A checkpoint of an older version, without the positive class: resumed only once it is named.
    const older = path.join(dir, 'sick-older');
    expect(await runTraining(sick(older, 'Sick'), stopAfterEpoch1())).toMatchObject({ stoppedEarly: true });
    expect((await loadCheckpointState(older)).recipe.positive).toBe('Sick');
    await rewriteAsVersion1(older, { edit: (settings) => void delete settings.positiveClass });
    await expect(
      runTraining({ ...sick(older), resume: true }, { report: recorder(), given: () => false }),
    ).rejects.toThrow(/neither of them Parasitized: name the class to screen for with --positive <class>$/);
    const resumed = await runTraining(
      { ...sick(older, 'Sick'), resume: true },
      { report: recorder(), given: (key) => key === 'positive' },
    );
    expect(resumed).toEqual({ stoppedEarly: false, epochsCompleted: 2 });
    expect((await loadMetadata(older)).positiveClass).toBe('Sick');
  });

  it('resumes a run an older version stopped (state.json version 1) as it resumes one of its own', async () => {
    // Every setting a version-1 file keeps elsewhere than the flag of its name, away from its default.
    const recipe = {
      resize: 'area',
      stain: 'balance',
      schedule: 'cosine',
      warmup: 0.5,
      labelSmoothing: 0.1,
      l2: 1e-3,
      ema: 0.5,
      rotation: 180,
      color: 0.1,
      preset: 'laptop',
    } as const;
    const own = path.join(dir, 'own-checkpoint');
    const older = path.join(dir, 'older-checkpoint');
    const stopped = await runTraining({ ...options(own), ...recipe }, stopAfterEpoch1());
    expect(stopped).toEqual({ stoppedEarly: true, epochsCompleted: 1 });
    await fsp.cp(own, older, { recursive: true });
    await rewriteAsVersion1(older);

    // The old file's recipe is compared with the flags given, as this version's is.
    await expect(
      runTraining(
        { ...options(older), ...recipe, epochs: 3, resume: true },
        { report: recorder(), given: (key) => key === 'epochs' },
      ),
    ).rejects.toThrow(
      "--epochs 3 differs from the interrupted run's 2: resume with the same flags, or leave --epochs out",
    );
    await expect(
      runTraining({ ...options(older), resume: true }, { report: recorder(), given: (key) => key === 'color' }),
    ).rejects.toThrow("--color 0 differs from the interrupted run's 0.1");
    // No flag given: the run's own recipe and data folder, read from either file.
    const resume = (modelDir: string) =>
      runTraining(
        { ...options(modelDir), data: path.join(dir, 'moved'), resume: true },
        { report: recorder(), given: () => false },
      );
    expect(await resume(own)).toEqual({ stoppedEarly: false, epochsCompleted: 2 });
    expect(await resume(older)).toEqual({ stoppedEarly: false, epochsCompleted: 2 });

    expect(await loadCheckpointState(older)).toEqual(await loadCheckpointState(own));
    expect(await loadHistory(older)).toEqual(await loadHistory(own));
    const [ownModel, olderModel] = await Promise.all([loadModel(own), loadModel(older)]);
    const difference = maxAbsDifference(weightValues(olderModel.model), weightValues(ownModel.model));
    ownModel.model.dispose();
    olderModel.model.dispose();
    expect(difference).toBe(0);
    expect({ ...olderModel.metadata, created: '' }).toEqual({ ...ownModel.metadata, created: '' });
    expect(olderModel.metadata).toMatchObject({ resize: 'area', stain: 'balance', positiveClass: 'Parasitized' });
  });

  it('stops at the interrupt signal before the first epoch, saving nothing, and releases the interrupt', async () => {
    const report = recorder();
    let released = false;
    const interrupt = () => ({ signal: AbortSignal.abort(), release: () => void (released = true) });
    const modelDir = path.join(dir, 'stopped');
    const outcome = await runTraining(options(modelDir), { report, interrupt });
    expect(outcome).toEqual({ stoppedEarly: true, epochsCompleted: 0 });
    expect(report.results).toContain('stopped before the first epoch completed; nothing was saved');
    expect(released).toBe(true);
    expect(await hasCheckpoint(modelDir)).toBe(false);
  });
});
