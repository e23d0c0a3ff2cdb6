import { describe, expect, it } from 'vitest';
import { DEFAULT_CACHE_BYTES, ImageCache } from '../../src/input/image-cache.js';

const image = (bytes: number, fill = 1): Uint8Array => new Uint8Array(bytes).fill(fill);

describe('ImageCache', () => {
  it('defaults to a 1 GiB budget', () => {
    expect(new ImageCache().budgetBytes).toBe(1024 ** 3);
    expect(DEFAULT_CACHE_BYTES).toBe(1024 ** 3);
  });

  it('returns what was stored and counts its bytes', () => {
    const cache = new ImageCache(100);
    const a = image(30, 7);
    expect(cache.set('a', a)).toBe(true);
    expect(cache.get('a')).toBe(a);
    expect(cache.has('a')).toBe(true);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.bytes).toBe(30);
    expect(cache.size).toBe(1);
  });

  it('never exceeds its budget: an image that does not fit is not kept, and nothing is evicted', () => {
    const cache = new ImageCache(100);
    expect(cache.set('a', image(40))).toBe(true);
    expect(cache.set('b', image(40))).toBe(true);
    expect(cache.set('c', image(40))).toBe(false);
    expect(cache.has('c')).toBe(false);
    expect(cache.has('a') && cache.has('b')).toBe(true);
    expect(cache.set('d', image(20))).toBe(true); // exactly fills the budget
    expect(cache.bytes).toBe(100);
    expect(cache.set('e', image(1))).toBe(false);
  });

  it('keeps nothing with a zero budget', () => {
    const cache = new ImageCache(0);
    expect(cache.set('a', image(1))).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('accounts a replaced key once, and frees everything on clear', () => {
    const cache = new ImageCache(100);
    cache.set('a', image(60));
    expect(cache.set('a', image(80))).toBe(true); // replaces: 80 in use, not 140
    expect(cache.bytes).toBe(80);
    expect(cache.get('a')?.length).toBe(80);
    cache.clear();
    expect(cache.bytes).toBe(0);
    expect(cache.size).toBe(0);
  });

  it('rejects a negative budget', () => {
    expect(() => new ImageCache(-1)).toThrow(RangeError);
  });
});
