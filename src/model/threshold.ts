// Where the decision threshold in force comes from, for `evaluate`, `predict` (and the app's starting point).
import { DEFAULT_THRESHOLD } from '../config.js';
import type { ThresholdSource } from '../stats/evaluation.js';
import type { ModelMetadata } from './io.js';

/** The threshold in force without a validation search: the flag, else the model's saved one, else 0.5. */
export function thresholdInForce(
  flag: number | undefined,
  metadata: ModelMetadata,
): { threshold: number; source: ThresholdSource } {
  if (flag !== undefined) return { threshold: flag, source: 'flag' };
  if (metadata.threshold !== undefined) return { threshold: metadata.threshold, source: 'model' };
  return { threshold: DEFAULT_THRESHOLD, source: 'default' };
}
