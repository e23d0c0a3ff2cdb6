import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { emptyHistory, epochCount, parseHistory } from '../../src/model/history.js';

describe('history', () => {
  it('round-trips through JSON, reading null (how JSON writes NaN) back as NaN', () => {
    const h = {
      loss: [0.9, Number.NaN],
      accuracy: [0.5, 0.6],
      val_loss: [1, 0.8],
      val_accuracy: [0.4, 0.7],
      lr: [0.1, 0.1],
    };
    const parsed = parseHistory(JSON.parse(JSON.stringify(h)));
    expect(parsed.loss[0]).toBe(0.9);
    expect(Number.isNaN(parsed.loss[1])).toBe(true);
    expect(parsed.val_accuracy).toEqual([0.4, 0.7]);
  });

  it('treats a missing series as empty and counts epochs by the longest series', () => {
    const parsed = parseHistory({ loss: [1, 2, 3], accuracy: [0.1, 0.2, 0.3] });
    expect(parsed.val_loss).toEqual([]);
    expect(epochCount(parsed)).toBe(3);
    expect(epochCount(emptyHistory())).toBe(0);
  });

  it('rejects malformed files with a readable UserError', () => {
    expect(() => parseHistory([1, 2])).toThrow(UserError);
    expect(() => parseHistory({ loss: 'x' })).toThrow(/"loss" must be an array/);
    expect(() => parseHistory({ accuracy: [0.5, '0.6'] }, 'run/history.json')).toThrow(
      /run\/history.json: "accuracy"\[1\] is not a number/,
    );
  });
});
