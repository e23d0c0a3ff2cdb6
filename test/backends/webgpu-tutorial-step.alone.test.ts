// The tutorial-size ResNet (stages 3,4,6; filters 64..512; 64x64) trains on webgpu: one step at batch 32 in one
// pass (no micro-batches), whose loss matches the wasm backend's for the same weights and images. Its L2 penalty
// sums 44 kernels, far beyond the storage buffers one webgpu program may bind (8 by default, 16 on llvmpipe). On the
// software Vulkan device of CI this one step takes about three minutes (figures live in BENCHMARKS.md, not here).
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('the tutorial ResNet on webgpu', () => {
  it('trains one batch of 32 in one step, with the loss wasm computes for the same weights and images', async () => {
    // The timeout only guards against a hang: alone on 2 cores the step takes about three minutes, but on a machine
    // shared with other work the software device gets a fraction of the cores.
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['test/backends/tutorial-step.mjs'],
        { timeout: 1_500_000, maxBuffer: 1 << 20 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      );
    });
    const result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as {
      penalties: number;
      wasmLoss: number;
      webgpuLoss: number;
      weightsFinite: boolean;
      weightsChanged: boolean;
    };
    expect(result.penalties).toBe(44); // 43 convolution kernels and the dense one
    expect(Number.isFinite(result.webgpuLoss)).toBe(true);
    expect(Math.abs(result.webgpuLoss - result.wasmLoss) / result.wasmLoss, JSON.stringify(result)).toBeLessThanOrEqual(
      1e-4,
    );
    expect(result.weightsFinite).toBe(true);
    expect(result.weightsChanged).toBe(true);
  }, 1_500_000);
});
