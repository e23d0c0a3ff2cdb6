// Decoded images kept in memory between epochs, so each file is decoded and resized once per run.

/**
 * Default byte budget: 1 GiB. The full NIH set (27,558 images) at 64x64x3 is ~340 MB, so it fits with room
 * for 96x96 (~760 MB); at larger sizes the images beyond the budget are decoded again every epoch.
 */
export const DEFAULT_CACHE_BYTES = 1024 ** 3;

/**
 * A bounded map from key to decoded uint8 image. The bound is on the images' bytes (byteLength), not on
 * their count, and it is never exceeded: an image that does not fit is simply not kept. There is no eviction —
 * with a shuffled pass over the same files every epoch, evicting would only swap which images are re-decoded
 * (same hit rate as keeping the first ones) while churning the garbage collector.
 */
export class ImageCache {
  private readonly images = new Map<string, Uint8Array>();
  private usedBytes = 0;

  constructor(readonly budgetBytes: number = DEFAULT_CACHE_BYTES) {
    if (!(budgetBytes >= 0)) throw new RangeError(`cache budget must be 0 or more bytes, got ${budgetBytes}`);
  }

  get(key: string): Uint8Array | undefined {
    return this.images.get(key);
  }

  has(key: string): boolean {
    return this.images.has(key);
  }

  /** Keeps `image` if it fits in the remaining budget; returns whether it is now cached. */
  set(key: string, image: Uint8Array): boolean {
    const previous = this.images.get(key);
    const freed = previous ? previous.byteLength : 0;
    if (this.usedBytes - freed + image.byteLength > this.budgetBytes) return false;
    this.images.set(key, image);
    this.usedBytes += image.byteLength - freed;
    return true;
  }

  /** Bytes held by the cached images. */
  get bytes(): number {
    return this.usedBytes;
  }

  /** Number of cached images. */
  get size(): number {
    return this.images.size;
  }

  clear(): void {
    this.images.clear();
    this.usedBytes = 0;
  }
}
