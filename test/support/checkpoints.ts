// A checkpoint as an older version left it: state.json of version 1, whose `settings` the training loop followed,
// with the rest of the run under `run`. Made from a checkpoint this version wrote, by the literal the old `train`
// built (src/workflows/train.ts before the recipe was saved whole), so a test can resume what a run interrupted
// under that version left on disk.
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** The old `settings`, loosely typed so a test can take a field away or add one an even older version wrote. */
export type Version1Settings = Record<string, unknown> & { run: Record<string, unknown> };

/**
 * Rewrites `<modelDir>/checkpoint/state.json` (this version's) as version 1 wrote the same run; `edit` may change the
 * old settings first. `classes` and `backend` are what the old file recorded of the network and of the process.
 */
export async function rewriteAsVersion1(
  modelDir: string,
  {
    classes = 2,
    backend = 'cpu',
    edit,
  }: { classes?: number; backend?: string; edit?: (s: Version1Settings) => void } = {},
): Promise<Version1Settings> {
  const file = path.join(modelDir, 'checkpoint', 'state.json');
  const state = JSON.parse(await fsp.readFile(file, 'utf8'));
  const { recipe: flags, data } = state;
  const architecture = {
    inputSize: flags.imageSize,
    channels: 3,
    classes,
    stages: flags.stages,
    filters: flags.filters,
    l2: flags.l2,
  };
  const settings: Version1Settings = {
    epochs: flags.epochs,
    initialLr: flags.lr,
    power: 1,
    schedule: flags.schedule,
    warmupEpochs: flags.warmup,
    labelSmoothing: flags.labelSmoothing,
    ema: flags.ema,
    momentum: flags.momentum,
    seed: flags.seed,
    architecture,
    resize: flags.resize,
    stain: flags.stain,
    positiveClass: flags.positive,
    run: {
      data,
      batchSize: flags.batchSize,
      imageSize: flags.imageSize,
      rotation: flags.rotation,
      color: flags.color,
      backend,
      preset: flags.preset,
      ...(flags.excluded ? { excluded: flags.excluded } : {}),
    },
  };
  edit?.(settings);
  const old = { version: 1, epochsCompleted: state.epochsCompleted, history: state.history, settings };
  await fsp.writeFile(file, JSON.stringify(old, null, 2));
  return settings;
}
