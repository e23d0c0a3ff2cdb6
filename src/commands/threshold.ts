// Where the threshold in force comes from, for `evaluate` and `predict`.
import type { ModelMetadata } from '../model/io.js';
import { DEFAULT_THRESHOLD } from '../config.js';
import type { ThresholdSource } from '../report/evaluation.js';

/** The threshold in force without a validation search: the flag, else the model's saved one, else 0.5. */
export function thresholdInForce(flag: number | undefined, metadata: ModelMetadata): { threshold: number; source: ThresholdSource } {
  if (flag !== undefined) return { threshold: flag, source: 'flag' };
  if (metadata.threshold !== undefined) return { threshold: metadata.threshold, source: 'model' };
  return { threshold: DEFAULT_THRESHOLD, source: 'default' };
}
