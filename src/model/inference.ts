// The one place class probabilities are produced, for evaluate, predict, train's report and the browser app: the
// model's softmax on a batch, with test-time augmentation optionally (the mean over the 8 dihedral transforms of
// each cell: cells have no orientation), then the model's temperature. TensorFlow.js comes in as an argument (Node
// passes src/tf.ts's, the page its global `tf`), and this module imports only relative, browser-safe modules.
import { applyTemperature } from './temperature.js';

type TensorFlow = typeof import('@tensorflow/tfjs');
type Tensor4D = import('@tensorflow/tfjs').Tensor4D;
type Tensor = import('@tensorflow/tfjs').Tensor;

/**
 * What batchProbabilities runs: a tf.LayersModel, or an inference-only network made from one that gives the same
 * probabilities (Node folds the batch norms: src/model/fold-batch-norm.ts).
 */
export interface ImageClassifier {
  /** [batch, height, width, channels] of its one input. */
  readonly inputs: readonly { readonly shape: readonly (number | null)[] }[];
  predict(images: Tensor4D): Tensor | Tensor[];
}

export interface InferenceOptions {
  /** metadata.json's temperature; absent (older models) means 1, the probabilities as the network gives them. */
  temperature?: number;
  /** Average the probabilities over the 8 flips and right-angle rotations of each image (8x the work). */
  tta?: boolean;
}

/** Number of images the network sees per input image under test-time augmentation. */
export const TTA_VIEWS = 8;

/**
 * The 8 elements of the square's symmetry group applied to an NHWC batch of square images: the batch and its
 * transpose (a mirror on the diagonal), each as is, flipped vertically, horizontally and both (a half turn).
 * A transpose followed by a flip is a quarter turn, so the 8 cover every rotation by 90 degrees and every mirror.
 */
export function dihedralViews(tf: TensorFlow, images: Tensor4D): Tensor4D[] {
  const [, height, width] = images.shape;
  if (height !== width) throw new Error(`test-time augmentation needs square images, got ${height}x${width}`);
  const transposed = tf.transpose(images, [0, 2, 1, 3]);
  return [images, transposed].flatMap((view) => [
    view,
    tf.reverse(view, 1),
    tf.reverse(view, 2),
    tf.reverse(view, [1, 2]),
  ]);
}

/**
 * Class probabilities (row-major count x classes) of the first `count` images of `x`, NHWC float32 of the model's
 * input size. All tensors live inside one tidy and are read back with one data() call.
 */
export async function batchProbabilities(
  tf: TensorFlow,
  model: ImageClassifier,
  x: Float32Array,
  count: number,
  options: InferenceOptions = {},
): Promise<Float32Array> {
  const [, height, width, channels] = model.inputs[0].shape as number[];
  const pixels = height * width * channels;
  if (x.length < count * pixels)
    throw new Error(`a batch of ${x.length} floats is too short for ${count} images of ${height}x${width}x${channels}`);
  const output = tf.tidy(() => {
    const images = tf.tensor4d(x.subarray(0, count * pixels), [count, height, width, channels]);
    if (!options.tta) return model.predict(images) as Tensor4D;
    // Each view goes through the network on its own, so activations are those of one batch, not eight (predict
    // frees its intermediates; the views themselves are only input-sized).
    const views = dihedralViews(tf, images).map((view) => model.predict(view) as Tensor4D);
    return tf.div(tf.addN(views), TTA_VIEWS);
  });
  let probabilities: Float32Array;
  try {
    probabilities = (await output.data()) as Float32Array;
  } finally {
    output.dispose();
  }
  const classes = probabilities.length / Math.max(1, count);
  return applyTemperature(probabilities, classes, options.temperature ?? 1);
}
