import { describe, expect, it } from 'vitest';
import { formatSeconds, formatTimeLeft } from '../../src/report/progress.js';

describe('formatSeconds', () => {
  it('writes tenths below 10 s, whole seconds up to a minute, then minutes and seconds, then hours', () => {
    expect(formatSeconds(4.23)).toBe('4.2s');
    expect(formatSeconds(42.4)).toBe('42s');
    expect(formatSeconds(125)).toBe('2m05s');
    expect(formatSeconds(3 * 3600 + 7 * 60 + 59)).toBe('3h07m');
    expect(formatSeconds(Number.NaN)).toBe('?');
  });

  it('carries a rounded-up 60 into the next unit: never "2m60s" or "60s"', () => {
    expect(formatSeconds(179.6)).toBe('3m00s');
    expect(formatSeconds(59.7)).toBe('1m00s');
    expect(formatSeconds(9.97)).toBe('10s');
    expect(formatSeconds(3599.6)).toBe('1h00m');
  });
});

describe('formatTimeLeft', () => {
  it('multiplies the time per epoch by the epochs left, and says when it cannot yet', () => {
    expect(formatTimeLeft(30, 4)).toBe('about 2m00s left (4 epochs)');
    expect(formatTimeLeft(undefined, 3)).toBe('3 epochs left (the time they take is known after the first)');
    expect(formatTimeLeft(30, 0)).toBe('no epoch left to train');
  });
});
