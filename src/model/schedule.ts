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
