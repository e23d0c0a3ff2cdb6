// How well the probabilities are calibrated, in words (stats/calibration.ts computes the ECE).
import { CALIBRATION_BINS } from '../stats/calibration.js';

/** "ECE 0.0412 (15 bins on the top class's probability)", for reports. */
export function formatEce(ece: number): string {
  return `${ece.toFixed(4)} (${CALIBRATION_BINS} bins on the top class's probability)`;
}

/** What `train` prints about the temperature it fitted on the validation split. */
export function formatTemperatureFit(
  fit: { temperature: number; applied: boolean; images: number; eceBefore: number; eceAfter: number },
  split: string,
): string {
  if (!fit.applied) {
    return `temperature: the fit on ${split} (${fit.images} images) ran to the end of its range (T = ${fit.temperature}); kept T = 1, ECE ${formatEce(fit.eceBefore)}`;
  }
  return `temperature T = ${fit.temperature} fitted on ${split} (${fit.images} images), saved in metadata.json: ECE ${fit.eceBefore.toFixed(4)} -> ${fit.eceAfter.toFixed(4)} (${CALIBRATION_BINS} bins on the top class's probability)`;
}
