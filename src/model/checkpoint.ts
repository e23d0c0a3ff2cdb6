// The per-epoch checkpoint in `<modelDir>/checkpoint/` that `train --resume` continues from: the model in the
// layers format (written by io.ts' code), the momentum optimizer's weights, and the run's state (epochs completed,
// history, the recipe whole and the data folder). The folder is swapped in whole, so a kill leaves the previous
// checkpoint or the new one.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';
import { tf } from '../tf.js';
import { UserError, asWriteError } from '../errors.js';
import { replaceFolder, writeFileSynced } from '../io/atomic.js';
import { CHECKPOINT_FOLDERS, assertOurCheckpoint } from '../io/output-folder.js';
import {
  CHECKPOINT_DIR,
  isRecord,
  readJson,
  readLayersModel,
  readText,
  sweepModelFolder,
  writeModelFiles,
} from './io.js';
import { recipeOfVersion1 } from './checkpoint-v1.js';
import type { TrainRecipe } from './recipe.js';
import type { TrainingHistory } from './history.js';

const OPTIMIZER_FILE = 'optimizer.json';
const OPTIMIZER_WEIGHTS_FILE = 'optimizer.bin';
const STATE_FILE = 'state.json';
const AVERAGE_FILE = 'average.json';
const AVERAGE_WEIGHTS_FILE = 'average.bin';
/** Where earlier versions kept the previous checkpoint while the new one was renamed into place. */
const PREVIOUS_CHECKPOINT_DIR = CHECKPOINT_FOLDERS[1];
/** 2: the recipe saved whole; 1: the loop's `settings` (read by checkpoint-v1.ts). */
const CHECKPOINT_VERSION = 2;

/** A named optimizer weight ({ name, tensor }); tfjs does not export the type itself. */
export type NamedTensor = Awaited<ReturnType<tf.Optimizer['getWeights']>>[number];

/** Where a run stands after a completed epoch (state.json): enough to check a resume and rebuild its sources. */
export interface CheckpointState {
  epochsCompleted: number;
  history: TrainingHistory;
  /** What the run is; a resume follows it. */
  recipe: TrainRecipe;
  /** The folder the run reads its images from (a resume reads it there unless told another). */
  data?: string;
}

/** The training state after a completed epoch, as written to `<modelDir>/checkpoint/`. */
export interface Checkpoint extends CheckpointState {
  /** The model with the weights (and batch-norm statistics) after `epochsCompleted` epochs. */
  model: tf.LayersModel;
  /** optimizer.getWeights() of the momentum optimizer: the iteration count, then one accumulator per variable. */
  optimizerWeights: NamedTensor[];
  /** The moving average of the weights (recipe.ema), in the model's weight order, after `steps` updates. */
  average?: SavedAverage;
}

export interface SavedAverage {
  steps: number;
  weights: tf.Tensor[];
}

/** state.json as this version writes it. */
interface StateFile extends CheckpointState {
  version: typeof CHECKPOINT_VERSION;
}

type CheckpointContents = CheckpointState & {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  /** Written beside the optimizer's state; the tensors stay the caller's. */
  average?: { steps: number; weights: { name: string; tensor: tf.Tensor }[] };
};

/**
 * Writes the checkpoint into a temporary folder beside `<modelDir>/checkpoint/` and swaps it in (replaceFolder):
 * a kill at any point leaves the previous checkpoint, or the new one, or (between the two renames) the previous
 * one under a leftover name that sweepModelFolder() renames back.
 */
export async function saveCheckpoint(modelDir: string, state: CheckpointContents): Promise<void> {
  const label = `--model-dir ${modelDir}`;
  try {
    await fs.mkdir(modelDir, { recursive: true });
    await sweepModelFolder(modelDir);
    // Each folder is checked right before it goes: hours of training leave time for a file of someone's to appear.
    const checkpointDir = path.join(modelDir, CHECKPOINT_DIR);
    await replaceFolder(checkpointDir, (temp) => writeCheckpoint(temp, state), {
      beforeSwap: () => assertOurCheckpoint(checkpointDir, label),
    });
    // A checkpoint left by an earlier version under its old name is superseded now.
    const previous = path.join(modelDir, PREVIOUS_CHECKPOINT_DIR);
    await assertOurCheckpoint(previous, label);
    await fs.rm(previous, { recursive: true, force: true });
  } catch (err) {
    throw asWriteError(err, `cannot save the checkpoint in ${modelDir} (the previous one is kept)`);
  }
}

async function writeCheckpoint(dir: string, state: CheckpointContents): Promise<void> {
  await writeModelFiles(dir, state.model, false);
  const optimizerWeights = await state.optimizer.getWeights();
  const encoded = await tf.io.encodeWeights(optimizerWeights);
  // getWeights() returns a fresh iterations scalar; the accumulators stay owned by the optimizer.
  tf.dispose(optimizerWeights[0]?.tensor);
  await writeFileSynced(path.join(dir, OPTIMIZER_WEIGHTS_FILE), new Uint8Array(encoded.data));
  await writeFileSynced(path.join(dir, OPTIMIZER_FILE), JSON.stringify({ weights: encoded.specs }));
  if (state.average) {
    const average = await tf.io.encodeWeights(state.average.weights);
    await writeFileSynced(path.join(dir, AVERAGE_WEIGHTS_FILE), new Uint8Array(average.data));
    await writeFileSynced(
      path.join(dir, AVERAGE_FILE),
      JSON.stringify({ steps: state.average.steps, weights: average.specs }),
    );
  }
  const checkpointState: StateFile = {
    version: CHECKPOINT_VERSION,
    epochsCompleted: state.epochsCompleted,
    history: state.history,
    recipe: state.recipe,
    ...(state.data === undefined ? {} : { data: state.data }),
  };
  await writeFileSynced(path.join(dir, STATE_FILE), JSON.stringify(checkpointState, null, 2));
}

/** The folder holding the newest complete checkpoint, if there is one. */
async function checkpointFolder(modelDir: string): Promise<string | undefined> {
  for (const name of [CHECKPOINT_DIR, PREVIOUS_CHECKPOINT_DIR]) {
    const dir = path.join(modelDir, name);
    if (await fse.pathExists(path.join(dir, STATE_FILE))) return dir;
  }
  return undefined;
}

export async function hasCheckpoint(modelDir: string): Promise<boolean> {
  return (await checkpointFolder(modelDir)) !== undefined;
}

/**
 * Reads only the checkpoint's state (epoch, history, recipe, data folder): enough to check a resume and rebuild the
 * data sources. A state.json of version 1 (an older version's run) is read through recipeOfVersion1.
 */
export async function loadCheckpointState(modelDir: string): Promise<CheckpointState> {
  const dir = await checkpointFolder(modelDir);
  if (!dir) {
    throw new UserError(`${modelDir} has no checkpoint to resume from; start a new run with \`malaria train\``);
  }
  const file = path.join(dir, STATE_FILE);
  const state = await readJson(file, dir, `start a new run with \`malaria train\``, 1);
  const run = isRecord(state) ? runOf(state) : undefined;
  if (!isRecord(state) || !run || !Number.isInteger(state.epochsCompleted)) {
    throw new UserError(
      `${file} is not a checkpoint this version can resume; start a new run with \`malaria train\``,
      1,
    );
  }
  return { epochsCompleted: state.epochsCompleted as number, history: state.history as TrainingHistory, ...run };
}

/** The recipe and data folder of a state.json of this version or of version 1; undefined for anything else. */
function runOf(state: Record<string, unknown>): Pick<CheckpointState, 'recipe' | 'data'> | undefined {
  if (state.version === 1) return recipeOfVersion1(state.settings);
  if (state.version !== CHECKPOINT_VERSION || !isRecord(state.recipe)) return undefined;
  const data = typeof state.data === 'string' ? { data: state.data } : {};
  return { recipe: state.recipe as unknown as TrainRecipe, ...data };
}

/** Loads the newest checkpoint: model, optimizer state, epochs completed, history, recipe and data folder. */
export async function loadCheckpoint(modelDir: string): Promise<Checkpoint> {
  const state = await loadCheckpointState(modelDir);
  const dir = (await checkpointFolder(modelDir)) as string;
  const model = await readLayersModel(dir);
  try {
    const optimizerJson = JSON.parse(await readText(path.join(dir, OPTIMIZER_FILE), dir)) as {
      weights: tf.io.WeightsManifestEntry[];
    };
    const decoded = await readWeights(path.join(dir, OPTIMIZER_WEIGHTS_FILE), optimizerJson.weights);
    // The momentum optimizer matches accumulators to variables by position, so keep the manifest's order.
    const optimizerWeights = optimizerJson.weights.map((spec) => ({ name: spec.name, tensor: decoded[spec.name] }));
    return { ...state, model, optimizerWeights, average: await readAverage(dir) };
  } catch (err) {
    model.dispose();
    if (err instanceof UserError) throw err;
    throw new UserError(
      `the optimizer state in ${dir} is unreadable (${(err as Error).message}); start a new run with \`malaria train\``,
      1,
    );
  }
}

/** The checkpoint's moving average, when its run keeps one. */
async function readAverage(dir: string): Promise<SavedAverage | undefined> {
  const file = path.join(dir, AVERAGE_FILE);
  if (!(await fse.pathExists(file))) return undefined;
  const manifest = JSON.parse(await readText(file, dir)) as { steps: number; weights: tf.io.WeightsManifestEntry[] };
  const decoded = await readWeights(path.join(dir, AVERAGE_WEIGHTS_FILE), manifest.weights);
  return { steps: manifest.steps, weights: manifest.weights.map((spec) => decoded[spec.name]) };
}

/** The tensors of a weights file written by tf.io.encodeWeights, by name. */
async function readWeights(file: string, specs: tf.io.WeightsManifestEntry[]): Promise<tf.NamedTensorMap> {
  const bytes = await fs.readFile(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return tf.io.decodeWeights(buffer, specs);
}
