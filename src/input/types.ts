// Shapes shared by the data pipeline and the training loop.

/** One batch of images in NHWC order, RGB scaled to [0, 1], with integer class labels. */
export interface Batch {
  /** size * imageSize * imageSize * 3 floats. */
  x: Float32Array;
  /** Class index per image (index into the sorted class names). */
  labels: Int32Array;
  /** Images in this batch (the last batch of an epoch may be short). */
  size: number;
}

/** A labelled image file inside `<data>/<split>/<Class>/`. */
export interface LabelledFile {
  path: string;
  label: number;
}

/** A split of the data set as the training loop sees it (Keras flow_from_directory semantics). */
export interface BatchSource {
  /** Sorted class names; label i is classNames[i]. */
  readonly classNames: readonly string[];
  readonly files: readonly LabelledFile[];
  readonly imageSize: number;
  readonly batchSize: number;
  /** ceil(files / batchSize). */
  readonly batchesPerEpoch: number;
  /**
   * The batches of epoch `epoch` (0-based), produced ahead of the consumer with a bounded prefetch.
   * Training sources shuffle (seeded by seed and epoch) and augment; evaluation sources keep file order.
   */
  batches(epoch: number): AsyncIterable<Batch>;
}
