// After training: fit the temperature on the validation split, record it in metadata.json (where evaluate, predict,
// export and the app read it) and measure the calibration error before and after.
import { tf } from '../tf.js';
import type { BatchSource } from '../input/types.js';
import { calibrationOf } from '../stats/calibration.js';
import { updateMetadata } from './io.js';
import { predictProbabilities } from './predict.js';
import { applyTemperature, fitTemperature, type TemperatureFit } from './temperature.js';

export interface TemperatureCalibration extends TemperatureFit {
  images: number;
  /** False when the fit ran to an end of its range (a validation split too small or too easy): T = 1 is kept. */
  applied: boolean;
  /** ECE on the validation split with T = 1 and with the temperature saved (the same when not applied). */
  eceBefore: number;
  eceAfter: number;
}

/** Fits T on `val` with `model`'s plain probabilities; when applied, saves it in `<modelDir>/metadata.json`. */
export async function calibrateTemperature(
  model: tf.LayersModel,
  val: BatchSource,
  modelDir: string,
): Promise<TemperatureCalibration> {
  const { probabilities, labels, classes } = await predictProbabilities(model, val);
  const fit = fitTemperature(probabilities, labels, classes);
  const applied = !fit.atBound;
  const eceBefore = calibrationOf(probabilities, labels, classes).ece;
  const eceAfter = applied
    ? calibrationOf(applyTemperature(probabilities, classes, fit.temperature), labels, classes).ece
    : eceBefore;
  if (applied) {
    await updateMetadata(modelDir, { temperature: fit.temperature });
  }
  return { ...fit, images: labels.length, applied, eceBefore, eceAfter };
}
