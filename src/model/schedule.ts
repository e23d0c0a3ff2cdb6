// The tutorial's learning-rate schedule (poly_decay): a polynomial fall from the initial rate towards zero.

/**
 * Learning rate for 0-based `epoch` of an `epochs`-long run: initialLr * (1 - epoch / epochs) ^ power.
 * With power 1 it decays linearly; a 4-epoch run at 0.1 uses 0.1, 0.075, 0.05, 0.025.
 */
export function polynomialDecay(initialLr: number, epoch: number, epochs: number, power = 1): number {
  if (!(epochs > 0)) throw new RangeError(`epochs must be positive, got ${epochs}`);
  if (epoch < 0 || epoch >= epochs) throw new RangeError(`epoch ${epoch} is outside 0..${epochs - 1}`);
  return initialLr * Math.pow(1 - epoch / epochs, power);
}

/** How the rate falls after any warm-up: the tutorial's per-epoch linear decay, or a per-step half cosine. */
export const SCHEDULES = ['linear', 'cosine'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

/** What the rate follows: the recipe's fields of the same names (TrainRecipe). */
export interface Schedule {
  /** The rate at the end of any warm-up, where the fall starts. */
  lr: number;
  epochs: number;
  schedule: ScheduleName;
  /** Epochs over which the rate climbs linearly from near 0 to lr, step by step. */
  warmup: number;
}

/**
 * The rate for the step that ends `done` of the way through 0-based `epoch` (done in (0, 1]). The linear schedule
 * without warm-up changes only between epochs, exactly as the tutorial's (poly_decay with power 1); warm-up and
 * cosine change every step.
 */
export function learningRateAt(schedule: Schedule, epoch: number, done: number): number {
  const { lr, epochs } = schedule;
  const warmup = Math.min(schedule.warmup, epochs);
  const position = epoch + done;
  if (position <= warmup) return (lr * position) / warmup;
  if (schedule.schedule === 'linear') return polynomialDecay(lr, epoch, epochs);
  const progress = (position - warmup) / (epochs - warmup);
  return lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}
