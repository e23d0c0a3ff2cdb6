import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../src/io/map-limit.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('mapLimit', () => {
  it('keeps order and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (ms, i) => {
      peak = Math.max(peak, ++running);
      await sleep(ms);
      running--;
      return ms * 10 + i;
    });
    expect(out).toEqual([50, 11, 42, 23, 34, 5, 66]);
    expect(peak).toBe(3);
  });

  it('stops starting work after a failure and rejects only once the calls in flight are done', async () => {
    const started: number[] = [];
    let slowDone = false;
    const run = mapLimit([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      if (i === 0) {
        await sleep(5);
        throw new Error('boom');
      }
      await sleep(40);
      slowDone = true;
      return i;
    });
    const settled = await run.then(
      () => 'resolved',
      (err: Error) => `${err.message} after slow call done: ${slowDone}`,
    );
    expect(settled).toBe('boom after slow call done: true');
    // Item 1 was already running; nothing new started after item 0 failed.
    expect(started).toEqual([0, 1]);
  });
});
