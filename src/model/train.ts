// The training loop: SGD with momentum under the recipe's schedule, gradient accumulation over micro-batches,
// validation, history, a checkpoint after every epoch, divergence detection and a clean stop on request.
// A custom loop rather than model.fit, because fit can neither accumulate gradients nor checkpoint the optimizer.
import { tf } from '../tf.js';
import { UserError } from '../errors.js';
import { activeStepGuard, isGpuBackend, isOutOfMemory } from '../backends/device-memory.js';
import type { BatchSource } from '../input/types.js';
import { preprocessingOf } from '../input/preprocessing.js';
import { learningRateAt } from './schedule.js';
import { WeightAverage } from './ema.js';
import type { TrainRecipe } from './recipe.js';
import { resolveArchitecture } from './resnet.js';
import { batchTensor, crossEntropyAndAccuracy, imageShape, predictProbabilities } from './predict.js';
import { applyInTraining, leanVariableGrads } from './lean-grads.js';
import { type Checkpoint, saveCheckpoint } from './checkpoint.js';
import { type ModelMetadata, type TrainingHistory, emptyHistory, saveHistory, saveModel } from './io.js';

export interface BatchEndInfo {
  /** 0-based epoch and batch index. */
  epoch: number;
  batch: number;
  batches: number;
  /** Running means over the epoch so far, weighted by batch size (as Keras' progress bar shows them). */
  loss: number;
  accuracy: number;
}

export interface EpochEndInfo {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  /** With a moving average (which val_* measure): the validation accuracy of the training weights themselves. */
  trainingWeightsValAccuracy?: number;
  lr: number;
  /** Wall time of the epoch, validation and checkpoint included. */
  seconds: number;
  /** Peak resident memory of the process so far (the wasm heap, the image cache and Node's own). */
  peakRssBytes: number;
  /** Live tfjs tensors after the epoch: flat from one epoch to the next unless something leaks. */
  tensors: number;
}

/** A step ran out of GPU memory and is being retried with smaller micro-batches (kept for the rest of the run). */
export interface OutOfMemoryInfo {
  /** Images per pass that did not fit, and the number the step is retried with. */
  microBatch: number;
  retryWith: number;
}

export interface TrainCallbacks {
  onBatchEnd?: (info: BatchEndInfo) => void;
  onEpochEnd?: (info: EpochEndInfo) => void | Promise<void>;
  onOutOfMemory?: (info: OutOfMemoryInfo) => void;
}

/** How this process runs a recipe, and where it saves: none of it is part of the run's recipe. */
export interface EngineOptions extends TrainCallbacks {
  /**
   * Images per forward/backward pass; each batch is split into micro-batches whose gradients are summed before
   * one optimizer step. Undefined (or >= the batch size) means one plain step per batch. An engine detail chosen
   * for the backend of this process (wasm's memory cap), not a setting of the run: a run started with full
   * batches on one backend resumes with micro-batches on another, and the reverse. On a GPU backend a step that
   * runs out of memory halves it (see trainStep) for the rest of this process's run; the checkpoint never says so.
   */
  microBatchSize?: number;
  /**
   * When set: history.json and a checkpoint are written there after every epoch, and the final model
   * (model.json, weights.bin, metadata.json) once the last epoch completes.
   */
  modelDir?: string;
  /** The folder the images come from, recorded in the checkpoint so a resume finds them without being told. */
  data?: string;
  /** Abort to stop: the current epoch is abandoned and nothing of it is saved. */
  signal?: AbortSignal;
}

export interface TrainResult {
  history: TrainingHistory;
  epochsCompleted: number;
  /** True when the signal stopped the run before its last epoch. */
  stoppedEarly: boolean;
}

/** The loss became NaN or infinite: the run cannot recover, and the last checkpoint is left as it was. */
export class DivergedError extends UserError {
  constructor(
    /** 0-based epoch and batch where it happened (the message counts from 1). */
    readonly epoch: number,
    /** Undefined when every training batch had a finite loss but the weights after them do not (validation). */
    readonly batch?: number,
  ) {
    super(
      batch === undefined
        ? `the loss diverged in epoch ${epoch + 1} (the validation loss is NaN or infinite); try a lower --lr`
        : `the loss diverged at epoch ${epoch + 1} batch ${batch + 1}; try a lower --lr`,
      1,
    );
    this.name = 'DivergedError';
  }
}

/** Trains `model` from scratch for recipe.epochs epochs. */
export async function trainModel(
  model: tf.LayersModel,
  train: BatchSource,
  val: BatchSource,
  recipe: TrainRecipe,
  options: EngineOptions = {},
): Promise<TrainResult> {
  const optimizer = tf.train.momentum(recipe.lr, recipe.momentum);
  try {
    return await runEpochs({ model, optimizer, train, val, recipe, options, startEpoch: 0, history: emptyHistory() });
  } finally {
    disposeOptimizer(optimizer);
  }
}

/** Continues a checkpointed run at the epoch after the checkpoint, with its recipe, history and optimizer state. */
export async function resumeTraining(
  checkpoint: Checkpoint,
  train: BatchSource,
  val: BatchSource,
  options: EngineOptions = {},
): Promise<TrainResult> {
  const { recipe } = checkpoint;
  const optimizer = tf.train.momentum(recipe.lr, recipe.momentum);
  try {
    // setWeights makes variables that share the decoded tensors' data; dropping our handles frees nothing in use.
    await optimizer.setWeights(checkpoint.optimizerWeights);
    tf.dispose(checkpoint.optimizerWeights.map((w) => w.tensor));
    return await runEpochs({
      average: checkpoint.average,
      model: checkpoint.model,
      optimizer,
      train,
      val,
      recipe,
      options,
      startEpoch: checkpoint.epochsCompleted,
      history: checkpoint.history,
    });
  } finally {
    disposeOptimizer(optimizer);
  }
}

/** MomentumOptimizer.dispose() (tfjs 4.22) skips SGDOptimizer's, leaking the learning-rate scalar: free both. */
function disposeOptimizer(optimizer: tf.MomentumOptimizer): void {
  optimizer.dispose();
  tf.SGDOptimizer.prototype.dispose.call(optimizer);
}

interface RunState {
  model: tf.LayersModel;
  optimizer: tf.MomentumOptimizer;
  train: BatchSource;
  val: BatchSource;
  recipe: TrainRecipe;
  options: EngineOptions;
  startEpoch: number;
  history: TrainingHistory;
  /** A resumed run's moving average (its tensors become the average's). */
  average?: { steps: number; weights: tf.Tensor[] };
}

async function runEpochs(run: RunState): Promise<TrainResult> {
  const average = movingAverage(run);
  try {
    return await runEpochsAveraged(run, average);
  } finally {
    average?.dispose();
  }
}

/** The run's moving average of the weights, when its recipe asks for one (restored from the checkpoint if any). */
function movingAverage(run: RunState): WeightAverage | undefined {
  const decay = run.recipe.ema;
  try {
    return decay > 0 ? new WeightAverage(run.model, decay, run.average?.steps, run.average?.weights) : undefined;
  } finally {
    // The average's variables share the checkpoint's tensors' data (refcounted): our handles can go either way.
    if (run.average) tf.dispose(run.average.weights);
  }
}

async function runEpochsAveraged(run: RunState, average: WeightAverage | undefined): Promise<TrainResult> {
  const { model, optimizer, train, val, recipe, options } = run;
  const history = cloneHistory(run.history);
  const stopped = (epochsCompleted: number): TrainResult => ({ history, epochsCompleted, stoppedEarly: true });
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const classes = train.classNames.length;
  let rate = Number.NaN;
  // The optimizer reads its rate on every step (SGDOptimizer keeps -lr in a scalar that setLearningRate replaces).
  const setRate = (epoch: number, done: number): number => {
    const next = learningRateAt(recipe, epoch, done);
    if (next !== rate) optimizer.setLearningRate(next);
    return (rate = next);
  };

  // Halved for good when a step runs out of GPU memory.
  let microBatchSize = options.microBatchSize;
  for (let epoch = run.startEpoch; epoch < recipe.epochs; epoch++) {
    if (options.signal?.aborted) return stopped(epoch);
    const started = performance.now();
    const lr = setRate(epoch, 1 / Math.max(1, train.batchesPerEpoch));

    let seen = 0;
    let lossSum = 0;
    let correct = 0;
    let batchIndex = 0;
    for await (const batch of train.batches(epoch)) {
      // Batches served from the cache never wait on I/O, so without this turn of the event loop a Ctrl-C
      // handler would only get to run (and set the signal) at the end of the epoch.
      if (options.signal) await new Promise<void>((resolve) => setImmediate(resolve));
      if (options.signal?.aborted) return stopped(epoch);
      setRate(epoch, (batchIndex + 1) / Math.max(1, train.batchesPerEpoch));
      const step = await trainStep(
        model,
        optimizer,
        variables,
        batch.x,
        batch.labels,
        batch.size,
        classes,
        microBatchSize,
        recipe.labelSmoothing,
        options.onOutOfMemory,
      );
      if (step.microBatch < Math.min(microBatchSize ?? batch.size, batch.size)) microBatchSize = step.microBatch;
      if (!Number.isFinite(step.loss)) throw new DivergedError(epoch, batchIndex);
      average?.update();
      seen += batch.size;
      lossSum += step.loss * batch.size;
      correct += step.correct;
      options.onBatchEnd?.({
        epoch,
        batch: batchIndex,
        batches: train.batchesPerEpoch,
        loss: lossSum / seen,
        accuracy: correct / seen,
      });
      batchIndex++;
    }
    if (options.signal?.aborted) return stopped(epoch);
    if (seen === 0)
      throw new UserError(`the training data yielded no images in epoch ${epoch + 1}; check the data folder`);

    // With an average, validation measures what will be saved (the average); the training weights' figure is noted.
    const trainingWeights = average ? await validate(model, val) : undefined;
    const validation = average ? await average.withAveraged(() => validate(model, val)) : await validate(model, val);
    // The last step of an epoch can push the weights to infinity with a finite loss: do not checkpoint those.
    if (validation.images > 0 && !Number.isFinite(validation.loss)) throw new DivergedError(epoch);
    if (options.signal?.aborted) return stopped(epoch);
    history.loss.push(lossSum / seen);
    history.accuracy.push(correct / seen);
    history.val_loss.push(validation.loss);
    history.val_accuracy.push(validation.accuracy);
    history.lr.push(lr);
    if (options.modelDir) {
      await saveCheckpoint(options.modelDir, {
        model,
        optimizer,
        epochsCompleted: epoch + 1,
        history,
        recipe,
        data: options.data,
        average: average && { steps: average.stepCount, weights: average.weights() },
      });
      await saveHistory(options.modelDir, history);
    }
    await options.onEpochEnd?.({
      epoch,
      loss: lossSum / seen,
      accuracy: correct / seen,
      valLoss: validation.loss,
      valAccuracy: validation.accuracy,
      trainingWeightsValAccuracy: trainingWeights?.accuracy,
      lr,
      seconds: (performance.now() - started) / 1000,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      tensors: tf.memory().numTensors,
    });
  }

  average?.install();
  if (options.modelDir) await saveModel(options.modelDir, model, buildMetadata(model, train, recipe));
  return { history, epochsCompleted: recipe.epochs, stoppedEarly: false };
}

function cloneHistory(history: TrainingHistory): TrainingHistory {
  return {
    loss: [...history.loss],
    accuracy: [...history.accuracy],
    val_loss: [...history.val_loss],
    val_accuracy: [...history.val_accuracy],
    lr: [...history.lr],
  };
}

function buildMetadata(model: tf.LayersModel, train: BatchSource, recipe: TrainRecipe): ModelMetadata {
  const [height, , channels] = imageShape(model);
  const { stages, filters, l2 } = recipe;
  return {
    classNames: [...train.classNames],
    ...(recipe.positive === undefined ? {} : { positiveClass: recipe.positive }),
    // The data sources balance to the constant reference; saved so later uses balance to the same colour.
    ...preprocessingOf({ imageSize: height, resize: recipe.resize, stain: recipe.stain }),
    channels,
    scaling: 'x/255',
    // The network trainOrResume built from the recipe (resolveArchitecture of the same settings).
    architecture: resolveArchitecture({
      inputSize: height,
      channels,
      classes: train.classNames.length,
      stages,
      filters,
      l2,
    }),
    backend: tf.getBackend(),
    created: new Date().toISOString(),
  };
}

/** The sum of the layers' regularization penalties (Keras L2: l2 * sum(w^2) per regularized kernel). */
export function regularizationPenalty(model: tf.LayersModel): tf.Scalar {
  return tf.tidy(() => {
    const penalties = model.calculateLosses();
    return penalties.length ? (tf.addN(penalties) as tf.Scalar) : tf.scalar(0);
  });
}

/** What one optimizer step gives back. */
export interface StepResult {
  /** The batch loss (mean cross-entropy + penalty) and the number of correct predictions. */
  loss: number;
  correct: number;
  /** Images per forward/backward pass the step was computed with (smaller than asked after running out of memory). */
  microBatch: number;
}

/**
 * One optimizer step on one batch. The batch is cut into micro-batches of `microBatchSize` images; micro-batch i
 * of n_i images contributes (n_i / size) * its mean cross-entropy, so the summed gradients equal those of the whole
 * batch's mean, and the L2 penalty is added once (to the first micro-batch). Batch norm runs in training mode, so
 * it normalises each micro-batch by its own statistics (8 images when the wasm backend's 4 GB memory cap forces
 * micro-batches of 8) and updates its moving mean and variance once per micro-batch: the only way the result
 * differs from one big step.
 *
 * On a GPU backend (webgpu, tensorflow) a step that runs out of device memory changes nothing (the weights, the
 * optimizer and batch norm's moving statistics are as before it): it is retried with micro-batches half as large,
 * after `onOutOfMemory` is told, until it fits; at one image per pass it gives up with a UserError.
 */
export async function trainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  x: Float32Array,
  labels: Int32Array,
  size: number,
  classes: number,
  microBatchSize = size,
  labelSmoothing = 0,
  onOutOfMemory?: (info: OutOfMemoryInfo) => void,
): Promise<StepResult> {
  let micro = Math.max(1, Math.min(microBatchSize, size));
  const retry = isGpuBackend(tf.getBackend());
  for (;;) {
    // Handles on the moving statistics' data as it is now (no copy): a pass updates them before the step can fail.
    const statistics = retry ? model.nonTrainableWeights.map((w) => tf.clone(w.read())) : [];
    try {
      const { loss, correct } = await stepInPasses(
        model,
        optimizer,
        variables,
        x,
        labels,
        size,
        classes,
        micro,
        labelSmoothing,
      );
      return { loss, correct, microBatch: micro };
    } catch (err) {
      if (!retry || !isOutOfMemory(err)) throw err;
      model.nonTrainableWeights.forEach((w, i) => w.write(statistics[i]));
      if (micro === 1) {
        throw new UserError(
          'the GPU ran out of memory even for one image per pass: close other programs that use the GPU, or use --backend wasm',
          1,
        );
      }
      const retryWith = Math.ceil(micro / 2);
      // The pool holds buffers sized for the passes that did not fit: free them for the smaller ones.
      activeStepGuard()?.releasePooled();
      onOutOfMemory?.({ microBatch: micro, retryWith });
      micro = retryWith;
    } finally {
      tf.dispose(statistics);
    }
  }
}

/** trainStep's work at one micro-batch size; on a device with a step guard, its errors are caught per step. */
async function stepInPasses(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  x: Float32Array,
  labels: Int32Array,
  size: number,
  classes: number,
  micro: number,
  labelSmoothing: number,
): Promise<{ loss: number; correct: number }> {
  const shape = imageShape(model);
  const guard = activeStepGuard();
  let gradients: tf.NamedTensorMap | undefined;
  const losses: tf.Scalar[] = [];
  const corrects: tf.Scalar[] = [];
  guard?.begin();
  let guarded = guard !== undefined;
  try {
    for (let start = 0; start < size; start += micro) {
      const count = Math.min(micro, size - start);
      const share = count / size;
      const first = start === 0;
      const result = tf.tidy(() => {
        const images = batchTensor(x, count, shape, start);
        const oneHot = tf.oneHot(tf.tensor1d(labels.subarray(start, start + count), 'int32'), classes);
        let correct: tf.Scalar | undefined;
        try {
          const { value, grads } = leanVariableGrads(() => {
            const probabilities = applyInTraining(model, images);
            correct = tf.keep(
              tf.sum(tf.cast(tf.equal(tf.argMax(probabilities, -1), tf.argMax(oneHot, -1)), 'float32')) as tf.Scalar,
            );
            const targets =
              labelSmoothing > 0 ? tf.add(tf.mul(oneHot, 1 - labelSmoothing), labelSmoothing / classes) : oneHot;
            const crossEntropy = tf.mean(tf.metrics.categoricalCrossentropy(targets, probabilities)) as tf.Scalar;
            const weighted = share === 1 ? crossEntropy : tf.mul(crossEntropy, share);
            return (first ? tf.add(weighted, regularizationPenalty(model)) : weighted) as tf.Scalar;
          }, variables);
          return { value, grads, correct: correct as tf.Scalar };
        } catch (err) {
          correct?.dispose(); // kept, so no scope frees it
          throw err;
        }
      });
      losses.push(result.value);
      corrects.push(result.correct);
      if (!gradients) {
        gradients = result.grads;
      } else {
        const sum: tf.NamedTensorMap = {};
        for (const name of Object.keys(gradients)) sum[name] = tf.add(gradients[name], result.grads[name]);
        tf.dispose([gradients, result.grads]);
        gradients = sum;
      }
    }
    // One read per batch: a device backend (webgpu) pays for every download.
    const totals = tf.tidy(() => tf.stack([tf.addN(losses), tf.addN(corrects)]));
    const [loss, correct] = await totals.data();
    totals.dispose();
    // The device's verdict on the step before anything of it is applied.
    guarded = false;
    await guard?.end();
    // Check before stepping so a diverged batch never reaches the weights.
    if (Number.isFinite(loss) && gradients) optimizer.applyGradients(gradients);
    return { loss, correct };
  } catch (err) {
    // An error thrown in the middle of a step that ran out of memory is that error's consequence.
    if (guarded)
      await guard?.end().catch((deviceErr: unknown) => {
        if (isOutOfMemory(deviceErr)) throw deviceErr;
      });
    throw err;
  } finally {
    tf.dispose([...losses, ...corrects]);
    if (gradients) tf.dispose(gradients);
  }
}

async function validate(
  model: tf.LayersModel,
  val: BatchSource,
): Promise<{ loss: number; accuracy: number; images: number }> {
  const predictions = await predictProbabilities(model, val);
  const { loss, accuracy } = crossEntropyAndAccuracy(predictions);
  // Keras' val_loss includes the regularization penalty, like the training loss.
  const penalty = regularizationPenalty(model);
  const penaltyValue = (await penalty.data())[0];
  penalty.dispose();
  return { loss: loss + penaltyValue, accuracy, images: predictions.labels.length };
}
