// `malaria backends`: each backend loaded and measured in its own process, as JSON and as a table.
import { describe, expect, it } from 'vitest';
import type { Survey } from '../../src/workflows/backends-survey.js';
import { expectOneErrorLine, runChild } from '../support/cli.js';
import { TINY_MODEL_FLAGS } from '../support/models.js';
import { GPU_DRIVERS_CAN_BE_HIDDEN, NO_GPU_DRIVER_ENV } from '../support/backends.js';

const TINY = [...TINY_MODEL_FLAGS, '--batch-size', '4', '--seconds', '0.2'];

describe('malaria backends', () => {
  it('loads and measures each backend asked for, and says what auto picks', async () => {
    const result = await runChild(['backends', '--json', '--only', 'wasm,cpu', ...TINY], {
      env: { MALARIA_WASM_THREADS: '1' },
    });
    expect(result.exitCode, result.stderr.join('\n')).toBe(0);
    const survey = JSON.parse(result.stdout.join('\n')) as Survey;
    expect(survey.backends.map((b) => b.backend)).toEqual(['wasm', 'cpu']);
    const [wasm, cpu] = survey.backends;
    expect(wasm).toMatchObject({ loads: true, device: 'CPU, one thread', microBatch: 4 });
    expect(cpu).toMatchObject({ loads: true, device: 'CPU, plain JavaScript', microBatch: 4 });
    for (const b of survey.backends) {
      expect(b.inferImgPerSecond, b.backend).toBeGreaterThan(0);
      expect(b.trainImgPerSecond, b.backend).toBeGreaterThan(0);
    }
    // The memory a training step used: the wasm heap (at least the 16 MB it starts with), tfjs' tensors on cpu.
    expect(wasm).toMatchObject({ memoryKind: 'heap', memoryBytes: expect.any(Number) });
    expect(wasm.memoryBytes).toBeGreaterThanOrEqual(16 * 2 ** 20);
    expect(cpu).toMatchObject({ memoryKind: 'tensors', memoryBytes: expect.any(Number) });
    expect(cpu.memoryBytes).toBeGreaterThan(0);
    expect(survey.auto).toMatch(/^backend: (tensorflow|webgpu|wasm|cpu)/);
  });

  it.runIf(GPU_DRIVERS_CAN_BE_HIDDEN)(
    'reports a backend that cannot load without failing (Linux: no Vulkan driver visible)',
    async () => {
      const noDriver = await runChild(['backends', '--only', 'webgpu', ...TINY], { env: NO_GPU_DRIVER_ENV });
      expect(noDriver.exitCode, noDriver.stderr.join('\n')).toBe(0);
      expect(noDriver.stdout.join('\n')).toMatch(
        /^webgpu +no +- +- +found no GPU adapter .*; it needs a GPU driver with Vulkan on Linux/m,
      );
    },
  );

  it('reports a backend that runs past its deadline without failing', async () => {
    // A Node process does not even load tfjs in 0.3 s: it is cut off and says so.
    const late = await runChild(['backends', '--only', 'cpu', '--deadline', '0.3', ...TINY]);
    expect(late.exitCode, late.stderr.join('\n')).toBe(0);
    expect(late.stdout.join('\n')).toMatch(/^cpu +no +- +- +stopped after 0\.3 s$/m);
  });

  it('refuses an unknown backend in --only in one line, exit 2', async () => {
    const result = await runChild(['backends', '--only', 'wasm,gpu']);
    expect(result.exitCode).toBe(2);
    expectOneErrorLine(result, /--only: unknown backend gpu: use tensorflow, webgpu, wasm, cpu/);
  });
});
