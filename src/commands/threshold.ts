// The decision-threshold flags shared by `evaluate` and `predict`, and where the threshold in force comes from.
import { InvalidArgumentError } from 'commander';
import type { ModelMetadata } from '../model/io.js';
import { DEFAULT_THRESHOLD } from '../config.js';
import type { ThresholdSource } from '../report/evaluation.js';

/** --threshold: a probability in [0, 1] (0 flags every image, 1 only certain ones). */
export function thresholdValue(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError('must be a probability between 0 and 1, for example 0.5.');
  }
  return n;
}

/** --target-sensitivity: a fraction in (0, 1]; 1 means every parasitized validation cell must be flagged. */
export function targetSensitivity(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) {
    throw new InvalidArgumentError('must be a number above 0 and at most 1, for example 0.95.');
  }
  return n;
}

/** The threshold in force without a validation search: the flag, else the model's saved one, else 0.5. */
export function thresholdInForce(flag: number | undefined, metadata: ModelMetadata): { threshold: number; source: ThresholdSource } {
  if (flag !== undefined) return { threshold: flag, source: 'flag' };
  if (metadata.threshold !== undefined) return { threshold: metadata.threshold, source: 'model' };
  return { threshold: DEFAULT_THRESHOLD, source: 'default' };
}
