// tfjs-backend-webgpu's buffer pool, kept near what is in use. Its BufferManager keeps every released buffer for
// reuse by exact size and usage and never frees one: a training step needs more buffers of the widest activation
// size in the backward pass than at the forward pass's end, and others at other moments, so the pool settled at
// the sum of each size's own peak, a third above the most the step ever had in use at once (BENCHMARKS.md, webgpu).
// Here a buffer that must be created first frees idle pooled buffers of other sizes, as many bytes as it would
// take the pool past the peak in use plus an eighth; and the whole pool can be freed on demand.
/** How far the device memory held may exceed the most ever in use at once before idle buffers are freed. */
const SLACK = 1 / 8;

export interface GpuBufferLike {
  size: number;
  destroy(): void;
}

/** tfjs-backend-webgpu's BufferManager, as far as this module uses it. */
export interface BufferManagerLike {
  numBytesUsed: number;
  numBytesAllocated: number;
  numFreeBuffers: number;
  freeBuffers: Map<string, GpuBufferLike[]>;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GpuBufferLike;
}

export interface PoolBounds {
  /** Device memory held (pooled buffers included) now, and the most since `resetPeak`. */
  held(): number;
  peak(): number;
  /** Starts both peaks anew: the most held, and the most in use that the pool's bound follows. */
  resetPeak(): void;
  /** Frees every idle pooled buffer; returns the bytes freed. */
  releaseIdle(): number;
}

/**
 * Wraps `buffers.acquireBuffer`: `check(size, mappedAtCreation)` runs first (for a cap on memory), then a buffer
 * that is not in the pool frees idle ones of other sizes as needed to stay within the bound.
 */
export function boundPool(
  buffers: BufferManagerLike,
  check: (size: number, mappedAtCreation: boolean) => void = () => undefined,
): PoolBounds {
  let peakHeld = buffers.numBytesAllocated;
  let peakInUse = buffers.numBytesUsed;

  /** Frees idle buffers, the largest idle sizes first, until `bytes` are freed or none is left. */
  const free = (bytes: number): number => {
    let freed = 0;
    const pools = [...buffers.freeBuffers.values()].filter((pool) => pool.length > 0);
    pools.sort((a, b) => b[0].size * b.length - a[0].size * a.length);
    for (const pool of pools) {
      while (pool.length && freed < bytes) {
        const buffer = pool.pop() as GpuBufferLike;
        freed += buffer.size;
        buffer.destroy();
        buffers.numFreeBuffers--;
      }
      if (freed >= bytes) break;
    }
    // Keys stay in the map, emptied: BufferManager.releaseBuffer pools nothing once the map is empty.
    buffers.numBytesAllocated -= freed;
    return freed;
  };

  const acquire = buffers.acquireBuffer.bind(buffers);
  buffers.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
    check(size, mappedAtCreation);
    const pooled = reuse && (buffers.freeBuffers.get(`${size}_${usage}`)?.length ?? 0) > 0;
    if (!pooled) {
      peakInUse = Math.max(peakInUse, buffers.numBytesUsed + size);
      const excess = buffers.numBytesAllocated + size - peakInUse * (1 + SLACK);
      if (excess > 0) free(excess);
    }
    const buffer = acquire(size, usage, mappedAtCreation, reuse);
    peakHeld = Math.max(peakHeld, buffers.numBytesAllocated);
    return buffer;
  };

  return {
    held: () => buffers.numBytesAllocated,
    peak: () => peakHeld,
    resetPeak() {
      peakHeld = buffers.numBytesAllocated;
      peakInUse = buffers.numBytesUsed;
    },
    releaseIdle: () => free(Infinity),
  };
}
