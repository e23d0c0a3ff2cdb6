// What a model says about a labelled split, and what every figure here starts from: each image's class
// probabilities next to its true class. model/predict.ts makes it; stats/ and report/ read it.

/** A model's class probabilities for n labelled images, with their true classes. */
export interface LabelledProbabilities {
  /** Row-major n x classes: probabilities[i * classes + c] is P(class c | image i). */
  probabilities: Float32Array;
  /** True label of image i. */
  labels: Int32Array;
  classes: number;
}
