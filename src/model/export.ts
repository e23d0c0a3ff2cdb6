// `malaria export`'s library: a model folder rewritten as a standard TensorFlow.js layers model whose weights are
// quantized in tfjs' own manifest format (stock tf.loadLayersModel dequantizes them), with metadata.json alongside.
// The files are written into a temporary folder beside the target and renamed into place, so an interrupted
// export never leaves half a model where `predict` or a web page would load it; --force replaces only a model
// or export of ours (src/io/output-folder.ts).
import path from 'node:path';
import seedrandom from 'seedrandom';
import { tf } from '../tf.js';
import { UserError, asWriteError } from '../errors.js';
import { replaceFolder, sweepLeftovers, writeFileSynced } from '../io/atomic.js';
import { assertApart, checkOutputFolder } from '../io/output-folder.js';
import { loadModel, METADATA_FILE, MODEL_FILE, WEIGHTS_FILE, type ModelMetadata } from './io.js';
import { imageShape } from './predict.js';
import { quantizeWeights, type Quantization, type QuantizedWeights } from './quantize.js';

/** metadata.json of an exported folder: the model's metadata plus how its weights are stored. */
export interface ExportedMetadata extends ModelMetadata {
  /** Absent when the weights are plain float32. */
  quantization?: Exclude<Quantization, 'none'>;
}

export interface ExportOptions {
  modelDir: string;
  outDir: string;
  quantization: Quantization;
  /** Replace an earlier model or export in `outDir` (never a folder holding anything else). */
  force?: boolean;
  /** Random images on which the exported model is compared with the original (default 4; 0 skips). */
  checkImages?: number;
}

export interface ExportedFile {
  name: string;
  bytes: number;
}

export interface ExportResult {
  quantization: Quantization;
  /** Set when the source folder was itself an export with quantized weights (their rounding carries over). */
  sourceQuantization?: ExportedMetadata['quantization'];
  /** The weights as float32, which is how `train` saves them. */
  float32WeightBytes: number;
  /** The files written, with their sizes. */
  files: ExportedFile[];
  counts: QuantizedWeights['counts'];
  /** Weights kept as float32 because float16 cannot hold them. */
  beyondFloat16: string[];
  /** Largest change of a weight value, relative to the largest magnitude of its tensor. */
  maxWeightError: number;
  /** Largest |P(class) exported - P(class) original| over `checkImages` random images; undefined when skipped. */
  maxProbabilityDifference?: number;
  checkImages: number;
}

const DEFAULT_CHECK_IMAGES = 4;

/** Refuses an --out that holds anything but an earlier model or export of ours, and an earlier one without --force. */
async function checkReplaceable(options: ExportOptions): Promise<void> {
  const label = `--out ${options.outDir}`;
  const state = await checkOutputFolder(options.outDir, 'model', label);
  if (state === 'ours' && !options.force) {
    throw new UserError(`${label} already holds a model; pass --force to replace it, or choose another folder`);
  }
}

/**
 * Refuses an --out that is, holds or lies inside the model folder, and one checkReplaceable refuses. Only then are
 * leftovers of killed exports to the same --out cleared, putting back an export a kill left moved aside (which is
 * then checked like any other).
 */
async function checkTarget(options: ExportOptions): Promise<void> {
  await assertApart(
    [{ path: options.outDir, label: `--out ${options.outDir}` }],
    [{ path: options.modelDir, label: `the model folder ${options.modelDir}` }],
  );
  await checkReplaceable(options);
  const target = path.resolve(options.outDir);
  const { restored } = await sweepLeftovers(path.dirname(target), [path.basename(target)]);
  if (restored.length > 0) await checkReplaceable(options);
}

/** The model's topology and its unquantized weights, as model.save hands them to a save handler. */
async function modelArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!captured) throw new Error('model.save did not call the save handler');
  return captured;
}

function modelJson(artifacts: tf.io.ModelArtifacts, specs: tf.io.WeightsManifestEntry[]): string {
  return JSON.stringify({
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    // Relative path: the folder can be copied or served over HTTP as is.
    weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: specs }],
  });
}

function exportedMetadata(metadata: ModelMetadata, quantization: Quantization): ExportedMetadata {
  const { quantization: _previous, ...rest } = metadata as ExportedMetadata;
  return quantization === 'none' ? rest : { ...rest, quantization };
}

/**
 * Writes the files, flushed, into a temporary folder beside --out and swaps it into place (see replaceFolder),
 * checking --out again right before: loading and quantizing leave time for a file of someone's to appear there.
 */
async function writeFolder(options: ExportOptions, files: [name: string, data: string | Uint8Array][]): Promise<void> {
  await replaceFolder(
    options.outDir,
    async (temp) => {
      for (const [name, data] of files) await writeFileSynced(path.join(temp, name), data);
    },
    { beforeSwap: () => checkReplaceable(options) },
  );
}

/** Largest difference between the two models' outputs on `count` seeded uniform-noise images. */
async function maxOutputDifference(a: tf.LayersModel, b: tf.LayersModel, count: number): Promise<number> {
  const shape = imageShape(a);
  const random = seedrandom('export-check');
  const pixels = Float32Array.from({ length: count * shape[0] * shape[1] * shape[2] }, () => random());
  const difference = tf.tidy(() => {
    const x = tf.tensor4d(pixels, [count, ...shape]);
    return tf
      .sub(a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor)
      .abs()
      .max();
  });
  try {
    return (await difference.data())[0]; // asynchronous: the webgpu backend cannot read synchronously in Node
  } finally {
    difference.dispose();
  }
}

/** Exports `modelDir` into `outDir` with the chosen weight encoding; see ExportResult for what it measures. */
export async function exportModel(options: ExportOptions): Promise<ExportResult> {
  await checkTarget(options);
  const checkImages = options.checkImages ?? DEFAULT_CHECK_IMAGES;
  const { model, metadata } = await loadModel(options.modelDir);
  try {
    const artifacts = await modelArtifacts(model);
    const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
    const quantized = quantizeWeights(artifacts.weightSpecs ?? [], weightData, options.quantization);
    const files: [string, string | Uint8Array][] = [
      [MODEL_FILE, modelJson(artifacts, quantized.specs)],
      [WEIGHTS_FILE, quantized.data],
      [METADATA_FILE, `${JSON.stringify(exportedMetadata(metadata, options.quantization), null, 2)}\n`],
    ];
    await writeFolder(options, files).catch((err: unknown) => {
      throw asWriteError(err, `cannot write the exported model into ${options.outDir}`);
    });
    const result: ExportResult = {
      quantization: options.quantization,
      sourceQuantization: (metadata as ExportedMetadata).quantization,
      float32WeightBytes: weightData.byteLength,
      files: files.map(([name, data]) => ({
        name,
        bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength,
      })),
      counts: quantized.counts,
      beyondFloat16: quantized.beyondFloat16,
      maxWeightError: quantized.maxRelativeError,
      checkImages,
    };
    // Reading the folder back through the same loader `evaluate` and `predict` use proves it loads.
    const exported = await loadModel(options.outDir);
    try {
      if (checkImages > 0)
        result.maxProbabilityDifference = await maxOutputDifference(model, exported.model, checkImages);
    } finally {
      exported.model.dispose();
    }
    return result;
  } finally {
    model.dispose();
  }
}
