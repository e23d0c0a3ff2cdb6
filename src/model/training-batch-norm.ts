// A training step's batch norms through one wasm kernel (tf-kernels/batch-norm-training.ts) instead of
// tfjs-layers' tf.moments and tf.batchNorm: five kernels, three of them slow broadcasts, become three SIMD passes.
// While `f` runs, each BatchNormalization layer called in training on wasm normalises the last axis with the
// kernel and updates its moving mean and variance as tfjs-layers does; the result is tfjs-layers' to float32
// rounding, and the model, its weights and what it saves are unchanged. Off wasm, in inference, or for a layer
// the kernel does not cover (another axis, no scale or offset, channels not a multiple of 4) the layer runs its own.
import { tf } from '../tf.js';
import { BATCH_NORM_TRAINING, canRunBatchNormTraining } from '../tf-kernels/batch-norm-training.js';

/** What of tfjs-layers' BatchNormalization this reads (its fields, not in the public typings). */
interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma: { read(): tf.Tensor } | null;
  beta: { read(): tf.Tensor } | null;
  movingMean: { read(): tf.Tensor; write(value: tf.Tensor): void };
  movingVariance: { read(): tf.Tensor; write(value: tf.Tensor): void };
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/** tfjs-layers' doMovingAverage: variable -= (variable - value) * (1 - momentum). */
function movingAverage(variable: BatchNormLayer['movingMean'], value: tf.Tensor, momentum: number): void {
  tf.tidy(() => {
    const current = variable.read();
    variable.write(tf.sub(current, tf.mul(tf.sub(current, value), 1 - momentum)));
  });
}

function trainingCall(layer: BatchNormLayer, own: BatchNormLayer['call']): BatchNormLayer['call'] {
  return (inputs, kwargs) => {
    const x = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    const { gamma, beta } = layer;
    const lastAxis = x !== undefined && (layer.axis === -1 || layer.axis === x.rank - 1);
    if (!kwargs?.training || !x || !lastAxis || !gamma || !beta || !canRunBatchNormTraining(x)) {
      return own.call(layer, inputs, kwargs);
    }
    return tf.tidy(() => {
      const [y, mean, variance] = tf
        .engine()
        .runKernel(
          BATCH_NORM_TRAINING,
          { x, scale: gamma.read(), offset: beta.read() },
          { varianceEpsilon: layer.epsilon },
        ) as tf.Tensor[];
      movingAverage(layer.movingMean, mean, layer.momentum);
      movingAverage(layer.movingVariance, variance, layer.momentum);
      return y;
    });
  };
}

/** Runs `f` with the batch norms among `layers` trained through the kernel (where it applies). */
export function withTrainingBatchNorm<T>(layers: readonly tf.layers.Layer[], f: () => T): T {
  const patched = layers.filter((layer) => layer.getClassName() === 'BatchNormalization');
  for (const layer of patched) {
    const batchNorm = layer as unknown as BatchNormLayer;
    batchNorm.call = trainingCall(batchNorm, batchNorm.call);
  }
  try {
    return f();
  } finally {
    // Each layer's own property shadowed the prototype's method: removing it restores tfjs' behaviour.
    for (const layer of patched) delete (layer as unknown as Partial<BatchNormLayer>).call;
  }
}
