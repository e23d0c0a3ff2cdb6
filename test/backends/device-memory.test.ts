// What counts as running out of GPU memory, on each GPU backend, and what does not (those end a run as before).
import { describe, expect, it } from 'vitest';
import { DeviceOutOfMemoryError, isGpuBackend, isOutOfMemory } from '../../src/backends/device-memory.js';

describe('isOutOfMemory', () => {
  it('recognises the webgpu guard’s error, WebGPU’s unmappable buffer and libtensorflow’s RESOURCE_EXHAUSTED', () => {
    expect(isOutOfMemory(new DeviceOutOfMemoryError('the GPU ran out of memory (Out of memory)'))).toBe(true);
    // Dawn, for createBuffer({ mappedAtCreation: true }) it cannot back (seen on llvmpipe for a 1 TB buffer).
    expect(isOutOfMemory(new RangeError('createBuffer failed to allocate a buffer mapped at creation.'))).toBe(true);
    // tfjs-node-gpu (tensorflow/tfjs#2760).
    const tensorflow = new Error(
      'Invalid TF_Status: 8\nMessage: OOM when allocating tensor with shape[32,128,64,64] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc',
    );
    expect(isOutOfMemory(tensorflow)).toBe(true);
  });

  it('leaves every other error alone', () => {
    expect(
      isOutOfMemory(new Error('the GPU reported an error, so results cannot be trusted: Invalid ShaderModule')),
    ).toBe(false);
    expect(isOutOfMemory(new RangeError('Invalid array length'))).toBe(false);
    expect(isOutOfMemory(new Error('Invalid TF_Status: 3\nMessage: Incompatible shapes'))).toBe(false);
    expect(isOutOfMemory('a string')).toBe(false);
  });

  it('retries only on the backends with a device of their own', () => {
    expect(['tensorflow', 'webgpu', 'wasm', 'cpu'].filter(isGpuBackend)).toEqual(['tensorflow', 'webgpu']);
  });
});
