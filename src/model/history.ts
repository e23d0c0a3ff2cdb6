// The per-epoch training record, in Keras' History.history shape so history.json reads like the tutorial's.
import { UserError } from '../errors.js';
import { HISTORY_KEYS } from '../io/output-folder.js';

export interface TrainingHistory {
  loss: number[];
  accuracy: number[];
  val_loss: number[];
  val_accuracy: number[];
  lr: number[];
}

// The series are named where the model folder's files are told apart from others' (src/io/output-folder.ts).
export { HISTORY_KEYS };
const _EVERY_SERIES_IS_RECORDED: readonly (keyof TrainingHistory)[] = HISTORY_KEYS;

export function emptyHistory(): TrainingHistory {
  return { loss: [], accuracy: [], val_loss: [], val_accuracy: [], lr: [] };
}

/** Epochs recorded: the longest series (val_* may be empty when training ran without validation). */
export function epochCount(history: TrainingHistory): number {
  return Math.max(0, ...HISTORY_KEYS.map((key) => history[key].length));
}

/**
 * Checks parsed history.json. JSON.stringify writes NaN/Infinity as null, so null reads back as NaN
 * (a diverged epoch stays visible as "not a number" instead of failing the whole file).
 */
export function parseHistory(value: unknown, source = 'history.json'): TrainingHistory {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${source}: expected a JSON object with ${HISTORY_KEYS.join(', ')}`);
  }
  const record = value as Record<string, unknown>;
  const history = emptyHistory();
  for (const key of HISTORY_KEYS) {
    const series = record[key];
    if (series === undefined) continue; // Older or partial files: a missing series is just empty.
    if (!Array.isArray(series)) throw new UserError(`${source}: "${key}" must be an array of numbers`);
    history[key] = series.map((item, index) => {
      if (item === null) return Number.NaN;
      if (typeof item !== 'number') throw new UserError(`${source}: "${key}"[${index}] is not a number`);
      return item;
    });
  }
  return history;
}
