// Saving and loading a trained model folder: model.json + weights.bin in the standard TensorFlow.js layers format
// (loadable by stock tf.loadLayersModel in a browser), metadata.json for inference, history.json for plots. The
// per-epoch checkpoint that `resume` continues from lives in checkpoint.ts and reuses the layers-file code here.
// tfjs-node's file:// handler is not available here, so the artifacts go through tf.io.withSaveHandler /
// tf.io.fromMemory and plain fs writes.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tf } from '../tf.js';
import { UserError, asWriteError, describeFsError } from '../errors.js';
import { sweepLeftovers, writeFileAtomic, writeFileSynced, type SweepResult } from '../io/atomic.js';
import { CHECKPOINT_FOLDERS, MODEL_ENTRIES } from '../io/output-folder.js';
import { preprocessingOf, type Preprocessing } from '../input/preprocessing.js';
import { RESIZE_METHODS, type ResizeMethod } from '../input/resize.js';
import { isStainReference, STAIN_METHODS, type StainMethod, type StainReference } from '../input/stain.js';
import { DEFAULT_POSITIVE_CLASS } from '../stats/positive-class.js';
import type { ResNetArchitecture } from './resnet.js';
import { HISTORY_KEYS, parseHistory, type TrainingHistory } from './history.js';

// The names every model folder rule (src/io/output-folder.ts) recognises as ours.
export const MODEL_FILE = MODEL_ENTRIES.model;
export const WEIGHTS_FILE = MODEL_ENTRIES.weights;
export const METADATA_FILE = MODEL_ENTRIES.metadata;
const HISTORY_FILE = MODEL_ENTRIES.history;
export const CHECKPOINT_DIR = CHECKPOINT_FOLDERS[0];

/**
 * What inference needs besides the weights: how to prepare an image (the Preprocessing fields, stored flat in
 * metadata.json) and what the outputs mean.
 */
export interface ModelMetadata extends Preprocessing {
  /** Output i is the probability of classNames[i]. */
  classNames: string[];
  /**
   * The class a two-class model screens for (`train --positive`): its P is thresholded, its recall is the
   * sensitivity. Set for every two-class model (older ones without it: Parasitized); absent with more classes.
   */
  positiveClass?: string;
  /** Always 3: RGB. */
  channels: number;
  /** Pixels are divided by 255 (the tutorial's ImageDataGenerator(rescale=1/255)). */
  scaling: 'x/255';
  /** The buildResNet options, when the model is one of ours. */
  architecture?: ResNetArchitecture;
  /** The TensorFlow.js backend that trained the model. */
  backend: string;
  /** ISO time the model was saved. */
  created: string;
  /** Decision threshold on P(positiveClass) chosen for this model (`evaluate --save-threshold`); absent = 0.5. */
  threshold?: number;
  /** Temperature fitted on the validation split after training (model/temperature.ts); absent = 1. */
  temperature?: number;
  /** `train --exclude`: the sha256 of the list of files left out of training, and how many were left out. */
  excluded?: { sha256: string; count: number };
}

// The history's shape (Keras' History.history names) and its parser live with the reports that draw it.
export { emptyHistory, type TrainingHistory } from './history.js';

async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, `${JSON.stringify(value, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// Layers model files

interface ModelFiles {
  modelJson: string;
  weights: Uint8Array;
}

/** Serialises a model into the standard layers-format model.json (weights in one weights.bin) plus its weights. */
async function serialiseModel(model: tf.LayersModel): Promise<ModelFiles> {
  let files: ModelFiles | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData ?? new ArrayBuffer(0);
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(weightData));
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        // Relative path: the folder can be copied or served over HTTP as is.
        weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts.weightSpecs ?? [] }],
      };
      files = { modelJson: JSON.stringify(modelJson), weights };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!files) throw new Error('model.save did not call the save handler');
  return files;
}

/**
 * Writes model.json and weights.bin into `dir`, each atomically. weights.bin goes first, so a kill in between
 * leaves the new weights under the old model.json: fine when retraining the same architecture, and a load error
 * (not silent garbage) otherwise.
 */
export async function writeModelFiles(dir: string, model: tf.LayersModel, atomic: boolean): Promise<void> {
  const files = await serialiseModel(model);
  const write = atomic ? writeFileAtomic : writeFileSynced;
  await write(path.join(dir, WEIGHTS_FILE), files.weights);
  await write(path.join(dir, MODEL_FILE), files.modelJson);
}

const NOT_OURS_FIX = 'point it at a folder written by `malaria train`';

export async function readText(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${what} has no ${path.basename(file)}; ${NOT_OURS_FIX}`);
    throw new UserError(describeFsError(err, file) ?? `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Reads and parses a JSON file of the model folder; invalid JSON is a UserError ending in `fix`. */
export async function readJson(file: string, dir: string, fix: string, exitCode?: number): Promise<unknown> {
  const text = await readText(file, dir);
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`${file} is not valid JSON; ${fix}`, exitCode);
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads and checks a layers-format model.json, with a one-line UserError for anything else. */
async function readModelJson(dir: string): Promise<tf.io.ModelJSON> {
  const jsonPath = path.join(dir, MODEL_FILE);
  const modelJson = await readJson(jsonPath, dir, NOT_OURS_FIX);
  if (!isRecord(modelJson) || !isRecord(modelJson.modelTopology) || !Array.isArray(modelJson.weightsManifest)) {
    throw new UserError(`${jsonPath} is not a TensorFlow.js model; ${NOT_OURS_FIX}`);
  }
  const format = modelJson.format;
  // Keras models converted by tensorflowjs_converter wrap the topology in model_config; tfjs reads both.
  const topology = modelJson.modelTopology;
  const className = isRecord(topology.model_config) ? topology.model_config.class_name : topology.class_name;
  if ((format !== undefined && format !== 'layers-model') || typeof className !== 'string') {
    throw new UserError(
      `${jsonPath} is a ${String(format ?? 'non-layers')} model, not a layers model; ${NOT_OURS_FIX}`,
    );
  }
  return modelJson as unknown as tf.io.ModelJSON;
}

/** Loads the layers model in `dir` from model.json and the weight files its manifest names. */
export async function readLayersModel(dir: string, modelJson?: tf.io.ModelJSON): Promise<tf.LayersModel> {
  const jsonPath = path.join(dir, MODEL_FILE);
  modelJson ??= await readModelJson(dir);
  const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      specs.push(...group.weights);
      for (const relative of group.paths) {
        const file = path.resolve(dir, relative);
        if (path.relative(path.resolve(dir), file).startsWith('..')) {
          throw new UserError(`${jsonPath} names a weights file outside its folder (${relative}); ${NOT_OURS_FIX}`);
        }
        let bytes: Buffer;
        try {
          bytes = await fs.readFile(file);
        } catch (err) {
          throw new UserError(
            `${describeFsError(err, file) ?? `cannot read ${file}`}; the model folder is incomplete, train it again`,
          );
        }
        buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      }
    }
    return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
  });
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (err) {
    // tfjs throws on weights that do not match the topology (truncated, foreign) or layers it does not know.
    throw new UserError(
      `${jsonPath} could not be loaded (${(err as Error).message.split('\n')[0]}); train the model again`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The model folder

/** Saves the model and its metadata into `dir` (created if needed). Each file is replaced atomically. */
export async function saveModel(dir: string, model: tf.LayersModel, metadata: ModelMetadata): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await writeModelFiles(dir, model, true);
    await writeJsonAtomic(path.join(dir, METADATA_FILE), metadata);
  } catch (err) {
    throw asWriteError(err, `cannot save the model in ${dir}`);
  }
}

/** What to do about a metadata.json that `train` did not write as it is. */
const RETRAIN = 'train the model again with `malaria train`';

/**
 * Checks a parsed metadata.json (`file` names it in errors) field by field: anything a later use depends on that is
 * missing or not what `train` writes is one line naming the field and the file. Older models' missing fields get
 * the values they were trained with (resize nearest, stain keep, Parasitized, the constant stain reference).
 */
export function parseMetadata(value: unknown, file: string): ModelMetadata {
  const bad = (what: string, fix = RETRAIN) => new UserError(`${file} ${what}; ${fix}`);
  if (!isRecord(value)) throw bad('is not a JSON object');
  const { classNames, imageSize, channels, scaling } = value;
  if (
    !Array.isArray(classNames) ||
    classNames.length < 2 ||
    !classNames.every((c) => typeof c === 'string' && c !== '') ||
    new Set(classNames).size !== classNames.length
  ) {
    throw bad('lacks classNames (a list of at least two different class names)');
  }
  if (!Number.isInteger(imageSize) || (imageSize as number) <= 0) throw bad('lacks a positive whole imageSize');
  // Every use feeds RGB images scaled by 1/255: a model that takes anything else would get wrong inputs silently.
  if (channels !== 3) throw bad(`has channels ${JSON.stringify(channels)}; models here take 3 (RGB)`);
  if (scaling !== 'x/255') throw bad(`has scaling ${JSON.stringify(scaling)}; models here take pixels scaled "x/255"`);
  const { resize } = value;
  if (resize !== undefined && !RESIZE_METHODS.includes(resize as ResizeMethod)) {
    throw bad(`names an unknown resize method ${JSON.stringify(resize)} (known: ${RESIZE_METHODS.join(', ')})`);
  }
  const { stain, stainReference } = value;
  if (stain !== undefined && !STAIN_METHODS.includes(stain as StainMethod)) {
    throw bad(`names an unknown stain method ${JSON.stringify(stain)} (known: ${STAIN_METHODS.join(', ')})`);
  }
  const balance = stain === 'balance';
  if (stainReference !== undefined && !(balance && isStainReference(stainReference))) {
    throw bad(
      balance
        ? `has a stainReference that is not three channel values above 0 and at most 255 (${JSON.stringify(stainReference)})`
        : `has a stainReference but stain ${JSON.stringify(stain ?? 'keep')}; a reference goes with stain "balance"`,
    );
  }
  const positiveClass = checkPositiveClass(value.positiveClass, classNames as string[], bad);
  const { threshold } = value;
  if (threshold !== undefined && !(typeof threshold === 'number' && threshold >= 0 && threshold <= 1)) {
    throw new UserError(
      `${file} has a threshold that is not a number between 0 and 1; remove it or set it with \`malaria evaluate --save-threshold\``,
    );
  }
  const { temperature } = value;
  if (
    temperature !== undefined &&
    !(typeof temperature === 'number' && Number.isFinite(temperature) && temperature > 0)
  ) {
    throw new UserError(
      `${file} has a temperature that is not a positive number; remove it (the model then uses 1) or train the model again`,
    );
  }
  const { excluded } = value;
  if (
    excluded !== undefined &&
    !(
      isRecord(excluded) &&
      typeof excluded.sha256 === 'string' &&
      /^[0-9a-f]{64}$/.test(excluded.sha256) &&
      Number.isSafeInteger(excluded.count) &&
      (excluded.count as number) >= 0
    )
  ) {
    throw bad('has an excluded that is not {"sha256": the list\'s 64 hex digits, "count": a whole number}');
  }
  return {
    ...value,
    ...(positiveClass === undefined ? {} : { positiveClass }),
    // Absent in older models: the tutorial's resize and stain; a balance without a saved reference used the
    // constant of its version, which is this one.
    ...preprocessingOf({
      imageSize: imageSize as number,
      resize: resize as ResizeMethod | undefined,
      stain: stain as StainMethod | undefined,
      stainReference: stainReference as StainReference | undefined,
    }),
  } as unknown as ModelMetadata;
}

/**
 * The positive class of a metadata.json: the saved one, which must be one of the classes; for a two-class model
 * saved before it was saved, Parasitized, the only class those versions could screen for by name (their others
 * took the first class, a guess this version refuses: the fix names the field to add).
 */
function checkPositiveClass(
  saved: unknown,
  classNames: string[],
  bad: (what: string, fix?: string) => UserError,
): string | undefined {
  if (saved !== undefined) {
    if (typeof saved === 'string' && classNames.includes(saved)) return saved;
    throw bad(
      `has a positiveClass ${JSON.stringify(saved)} that is not one of its classNames (${classNames.join(', ')})`,
    );
  }
  if (classNames.length !== 2) return undefined;
  if (classNames.includes(DEFAULT_POSITIVE_CLASS)) return DEFAULT_POSITIVE_CLASS;
  const [first, second] = classNames.map((name) => JSON.stringify(name));
  throw bad(
    `does not say which class the model screens for (no positiveClass, and neither class is ${DEFAULT_POSITIVE_CLASS})`,
    `add "positiveClass": ${first} or ${second} to it (the class to screen for), or train the model again with --positive <class>`,
  );
}

export async function loadMetadata(dir: string): Promise<ModelMetadata> {
  const file = path.join(dir, METADATA_FILE);
  const parsed = await readJson(file, dir, RETRAIN);
  return parseMetadata(parsed, file);
}

/** Changes some fields of a model's metadata.json (a threshold, a temperature) and writes it atomically. */
export async function updateMetadata(dir: string, changes: Partial<ModelMetadata>): Promise<void> {
  const metadata = await loadMetadata(dir);
  await writeJsonAtomic(path.join(dir, METADATA_FILE), { ...metadata, ...changes });
}

async function assertFolder(dir: string): Promise<void> {
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch (err) {
    throw new UserError(`${describeFsError(err, `model folder ${dir}`) ?? `cannot open ${dir}`}; ${NOT_OURS_FIX}`);
  }
  if (!stat.isDirectory()) throw new UserError(`${dir} is not a folder; ${NOT_OURS_FIX}`);
}

/** Loads a model folder written by saveModel; anything else is a one-line UserError naming what is missing. */
export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; metadata: ModelMetadata }> {
  await assertFolder(dir);
  // Check both small files before reading any weights.
  const modelJson = await readModelJson(dir);
  const metadata = await loadMetadata(dir);
  const model = await readLayersModel(dir, modelJson);
  const outputs = model.outputs[0].shape[model.outputs[0].shape.length - 1];
  if (outputs !== metadata.classNames.length) {
    model.dispose();
    throw new UserError(
      `${dir}: the model has ${outputs} outputs but metadata.json names ${metadata.classNames.length} classes; train the model again`,
    );
  }
  // Everything downstream feeds imageSize x imageSize x channels images: a model taking anything else is not ours.
  const input = model.inputs.length === 1 ? model.inputs[0].shape : [];
  const { imageSize, channels } = metadata;
  if (input.length !== 4 || input[1] !== imageSize || input[2] !== imageSize || input[3] !== channels) {
    model.dispose();
    const takes = model.inputs.map((i) => `[${i.shape.slice(1).join(', ')}]`).join(' and ');
    throw new UserError(
      `${dir}: the model takes inputs of shape ${takes}, not the ${imageSize}x${imageSize}x${channels} images metadata.json names; ${NOT_OURS_FIX}`,
    );
  }
  return { model, metadata };
}

/**
 * Cleans a model folder of the temporary files and folders of killed runs (weights.bin, JSON and checkpoint
 * temporaries), and puts back a checkpoint a kill left under its `old` name. Run before writing it, once the
 * folder has passed its ownership check (checkOutputFolder).
 */
export async function sweepModelFolder(modelDir: string): Promise<SweepResult> {
  return sweepLeftovers(modelDir, [...Object.values(MODEL_ENTRIES), CHECKPOINT_DIR]);
}

export async function saveHistory(dir: string, history: TrainingHistory): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await writeJsonAtomic(path.join(dir, HISTORY_FILE), history);
  } catch (err) {
    throw asWriteError(err, `cannot save ${HISTORY_FILE} in ${dir}`);
  }
}

export async function loadHistory(dir: string): Promise<TrainingHistory> {
  const file = path.join(dir, HISTORY_FILE);
  const parsed = await readJson(file, dir, `train the model again`);
  // A resumed run appends to these arrays, so every one of them must be there (parseHistory alone would allow gaps).
  if (!isRecord(parsed) || !HISTORY_KEYS.every((k) => Array.isArray(parsed[k]))) {
    throw new UserError(`${file} lacks the ${HISTORY_KEYS.join('/')} arrays; train the model again`);
  }
  return parseHistory(parsed, file);
}
