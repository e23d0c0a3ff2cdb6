// Out of memory on a GPU backend, recognised, and what a GPU backend offers a training step so it can recover:
// the device's errors caught per step, its pooled memory released, its memory measured.
import { tf } from '../tf.js';

/** The GPU had no memory left for a step; the step's results are void and nothing of it was applied. */
export class DeviceOutOfMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceOutOfMemoryError';
  }
}

/** What a backend on a device with its own memory offers a training step. */
export interface StepGuard {
  /** Starts catching the device's errors for one step. */
  begin(): void;
  /**
   * Stops catching; throws DeviceOutOfMemoryError if the device ran out of memory since `begin` (every other
   * error of the step then follows from it), or the device's first other error.
   */
  end(): Promise<void>;
  /** Frees the buffers the backend keeps for reuse but does not use now; returns the bytes freed. */
  releasePooled(): number;
  /** Device memory the backend holds now (pooled buffers included), and the most it held since `resetPeak`. */
  bytes(): { held: number; peak: number };
  /** Starts the peak anew (and, on webgpu, the bound of the pool: see webgpu-buffers.ts). */
  resetPeak(): void;
}

const guards = new WeakMap<object, StepGuard>();

/** Called by a backend's loader for the backend instance it creates. */
export function setStepGuard(backend: object, guard: StepGuard): void {
  guards.set(backend, guard);
}

/** The active backend's guard, if it has one (webgpu). */
export function activeStepGuard(): StepGuard | undefined {
  return guards.get(tf.backend());
}

/** The backends that compute on a device with its own memory: running out there is worth a smaller retry. */
export function isGpuBackend(name: string): boolean {
  return name === 'webgpu' || name === 'tensorflow';
}

/**
 * True for running out of device memory: our webgpu guard's error, WebGPU's RangeError for a buffer it could not
 * map, and libtensorflow's RESOURCE_EXHAUSTED ("Invalid TF_Status: 8 ... OOM when allocating tensor ...").
 */
export function isOutOfMemory(err: unknown): boolean {
  if (err instanceof DeviceOutOfMemoryError) return true;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof RangeError && /createBuffer|allocate a buffer/i.test(message)) return true;
  return /OOM when allocating|Invalid TF_Status: 8\b|Resource exhausted/i.test(message);
}
