// An exponential moving average of a model's weights (batch-norm statistics included), kept beside the training
// weights and saved as the model at the end: it smooths the last epochs' step-to-step noise, which a cell the model
// has not seen pays for. Averaging the statistics too keeps them consistent with the averaged kernels.
import { tf } from '../tf.js';

/** A named tensor as tf.io.encodeWeights takes it. */
export interface NamedWeight {
  name: string;
  tensor: tf.Tensor;
}

export class WeightAverage {
  private readonly averages: tf.Variable[];

  /**
   * `decay` is the weight of the average at each step; early on it is min(decay, (1 + steps) / (10 + steps)), so
   * the first steps are not dominated by the random initial weights. `saved` restores a checkpoint's average.
   */
  constructor(
    private readonly model: tf.LayersModel,
    readonly decay: number,
    private steps = 0,
    saved?: tf.Tensor[],
  ) {
    if (!(decay > 0 && decay < 1)) throw new RangeError(`the average's decay must be in (0, 1), got ${decay}`);
    const sources = saved ?? model.weights.map((w) => w.read());
    if (sources.length !== model.weights.length)
      throw new RangeError(`the saved average has ${sources.length} weights, the model ${model.weights.length}`);
    this.averages = sources.map((t) => tf.variable(t, false));
  }

  get stepCount(): number {
    return this.steps;
  }

  /** Moves the average towards the model's current weights; call after each optimizer step. */
  update(): void {
    this.steps++;
    const decay = Math.min(this.decay, (1 + this.steps) / (10 + this.steps));
    tf.tidy(() => {
      this.model.weights.forEach((weight, i) => {
        const average = this.averages[i];
        average.assign(tf.add(tf.mul(average, decay), tf.mul(weight.read(), 1 - decay)));
      });
    });
  }

  /** Runs `fn` with the averaged weights in the model, then puts the training weights back. */
  async withAveraged<T>(fn: () => Promise<T>): Promise<T> {
    const training = this.model.weights.map((w) => tf.clone(w.read()));
    this.model.setWeights(this.averages);
    try {
      return await fn();
    } finally {
      this.model.setWeights(training);
      tf.dispose(training);
    }
  }

  /** Leaves the averaged weights in the model for good (the end of training). */
  install(): void {
    this.model.setWeights(this.averages);
  }

  /** The average as named tensors, in the model's weight order, for the checkpoint (owned by this object). */
  weights(): NamedWeight[] {
    return this.averages.map((tensor, i) => ({ name: `average_${i}`, tensor }));
  }

  dispose(): void {
    tf.dispose(this.averages);
  }
}
