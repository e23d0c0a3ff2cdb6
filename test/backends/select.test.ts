// The backend choice: how many wasm threads, and the default (threaded) wasm build run end to end by the CLI.
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { tf } from '../../src/tf.js';
import { selectBackend, wasmThreads } from '../../src/backends/select.js';
import { expectOneErrorLine, runChild, runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { saveBrightnessModel } from '../support/models.js';
import { GPU_DRIVERS_CAN_BE_HIDDEN, NO_GPU_DRIVER_ENV } from '../support/backends.js';

describe('wasmThreads', () => {
  it('uses one thread per core unless MALARIA_WASM_THREADS says otherwise', () => {
    expect(wasmThreads({}, 2)).toBe(2);
    expect(wasmThreads({ MALARIA_WASM_THREADS: '' }, 4)).toBe(4);
    expect(wasmThreads({}, 1)).toBe(1);
    expect(wasmThreads({ MALARIA_WASM_THREADS: '1' }, 2)).toBe(1);
    expect(wasmThreads({ MALARIA_WASM_THREADS: '2' }, 8)).toBe(2);
  });

  it('never asks for more threads than cores, nor more than the 8 workers the threaded build starts', () => {
    expect(wasmThreads({ MALARIA_WASM_THREADS: '16' }, 2)).toBe(2);
    expect(wasmThreads({}, 64)).toBe(8);
    expect(wasmThreads({ MALARIA_WASM_THREADS: '12' }, 64)).toBe(8);
  });

  it.each(['0', '-1', '1.5', 'two'])('refuses MALARIA_WASM_THREADS=%s with a line saying what to use', (value) => {
    expect(() => wasmThreads({ MALARIA_WASM_THREADS: value }, 2)).toThrow(UserError);
    expect(() => wasmThreads({ MALARIA_WASM_THREADS: value }, 2)).toThrow(/whole number of threads, 1 or more/);
  });
});

describe('selectBackend with a bad MALARIA_WASM_THREADS', () => {
  it("is the user's error, checked before any backend loads, even where tensorflow is installed", async () => {
    let tensorflowLoads = 0;
    const machine = {
      env: { MALARIA_WASM_THREADS: 'many' },
      // Stands for an installed tfjs-node-gpu on a GPU: tried first by auto, so it must not even be loaded.
      loadTensorflow: async () => {
        tensorflowLoads++;
        return { package: '@tensorflow/tfjs-node-gpu' as const, gpu: true };
      },
    };
    for (const choice of ['auto', 'tensorflow', 'cpu'] as const) {
      await expect(selectBackend(choice, machine)).rejects.toThrow(/MALARIA_WASM_THREADS must be a whole number/);
    }
    expect(tensorflowLoads).toBe(0);
  });
});

/** Makes a child CLI count two cores, so that the threaded build starts on any machine. */
const TWO_CORES = ['--import', './test/support/two-cores.mjs'];

describe('the default wasm backend from the CLI', () => {
  let dir: string;
  const images = [
    'malaria/sample/Parasitized/C101P62ThinF_IMG_20150918_151149_cell_78.png',
    'malaria/sample/Uninfected/C100P61ThinF_IMG_20150918_150041_cell_108.png',
  ];
  beforeAll(async () => {
    dir = await makeTempDir('malaria-tf-');
    await saveBrightnessModel(path.join(dir, 'model'));
  });
  afterAll(() => removeDir(dir));

  it('runs one thread per core, answers as the cpu backend does, and the process ends by itself', async () => {
    const predict = (backend: string, env: Record<string, string>) =>
      runChild(['predict', '--model-dir', path.join(dir, 'model'), '--backend', backend, '--json', ...images], { env });
    const [wasm, cpu] = await Promise.all([predict('wasm', { MALARIA_WASM_THREADS: '' }), predict('cpu', {})]);
    // Closing at all is the point: the pool's threads must not keep Node running after the work (test timeout).
    expect(wasm.exitCode, wasm.stderr.join('\n')).toBe(0);
    expect(cpu.exitCode, cpu.stderr.join('\n')).toBe(0);
    // One thread per core, at most the 8 workers the threaded build starts: holds on 1, 2 or 16 cores.
    const threads = Math.min(os.availableParallelism(), 8);
    expect(wasm.stderr[0]).toBe(
      `backend: wasm (chosen with --backend) ${threads > 1 ? `with ${threads} threads` : 'on one thread'}`,
    );
    type Answer = { file: string; label: string; probability: number };
    const wasmAnswers = JSON.parse(wasm.stdout.join('\n')) as Answer[];
    const cpuAnswers = JSON.parse(cpu.stdout.join('\n')) as Answer[];
    expect(wasmAnswers.map((a) => a.label)).toEqual(cpuAnswers.map((a) => a.label));
    wasmAnswers.forEach((answer, i) => expect(answer.probability).toBeCloseTo(cpuAnswers[i].probability, 5));
  });

  it('falls back to the one-thread build, saying why, when the threaded build cannot start', async () => {
    // The threaded build writes its worker script to the temp folder; one that does not exist stops it.
    const missing = path.join(dir, 'no-such-temp-folder');
    const result = await runChild(
      ['predict', '--model-dir', path.join(dir, 'model'), '--backend', 'wasm', '--json', images[0]],
      {
        env: { MALARIA_WASM_THREADS: '2', TMPDIR: missing },
        nodeArgs: TWO_CORES,
      },
    );
    expect(result.exitCode, result.stderr.join('\n')).toBe(0);
    expect(result.stderr[0]).toMatch(
      /^backend: wasm \(chosen with --backend\) on one thread \(its threaded build did not start: ENOENT.*no-such-temp-folder/,
    );
    expect(JSON.parse(result.stdout.join('\n'))).toHaveLength(1);
  });

  it('leaves nothing in the temp folder', async () => {
    const temp = await mkdtemp(path.join(dir, 'temp-'));
    const result = await runChild(
      ['predict', '--model-dir', path.join(dir, 'model'), '--backend', 'wasm', '--json', images[0]],
      {
        env: { MALARIA_WASM_THREADS: '2', TMPDIR: temp },
        nodeArgs: TWO_CORES,
      },
    );
    expect(result.stderr[0]).toBe('backend: wasm (chosen with --backend) with 2 threads');
    expect(result.exitCode, result.stderr.join('\n')).toBe(0);
    expect(await readdir(temp)).toEqual([]);
  });

  it('says in --help how to change the thread count', async () => {
    const help = await runInProcess(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.join('\n')).toMatch(
      /MALARIA_WASM_THREADS=N +threads of the wasm backend \(default: one per core/,
    );
  });

  it('refuses a bad MALARIA_WASM_THREADS in one line, exit 2', async () => {
    const result = await runChild(['predict', '--model-dir', path.join(dir, 'model'), '--json', images[0]], {
      env: { MALARIA_WASM_THREADS: 'lots' },
    });
    expect(result.exitCode).toBe(2);
    expectOneErrorLine(result, /MALARIA_WASM_THREADS must be a whole number of threads, 1 or more, got "lots"/);
  });
});

describe('auto on other machines (what this machine lacks is injected)', () => {
  const software = {
    vendor: 'mesa',
    architecture: 'software',
    device: 'llvmpipe',
    description: 'llvmpipe (LLVM 15.0.6)',
    isFallbackAdapter: true,
  };
  const notInstalled = async (): Promise<never> => {
    throw Object.assign(new Error("Cannot find package '@tensorflow/tfjs-node-gpu'"), { code: 'ERR_MODULE_NOT_FOUND' });
  };
  /** Stands for tfjs-node: registers a 'tensorflow' backend (the cpu backend's class) and reports `gpu`. */
  const fakeTensorflow = (gpu: boolean) => async () => {
    const Cpu = tf.findBackend('cpu').constructor as new () => tf.KernelBackend;
    if (!tf.findBackendFactory('tensorflow')) tf.registerBackend('tensorflow', () => new Cpu());
    await tf.setBackend('tensorflow');
    return { package: '@tensorflow/tfjs-node-gpu' as const, gpu };
  };
  beforeAll(() => selectBackend('cpu'));
  afterAll(() => {
    if (tf.findBackendFactory('tensorflow')) tf.removeBackend('tensorflow');
  });

  it('never picks a software WebGPU device, and says why it passed over it', async () => {
    const chosen = await selectBackend('auto', {
      loadTensorflow: notInstalled,
      probeGpuAdapter: async () => ({ adapter: software }),
    });
    expect(chosen.name).toBe('wasm');
    expect(chosen.message).toMatch(
      /because tensorflow is not installed, webgpu has only a software device \(llvmpipe \(LLVM 15\.0\.6\)\), slower than wasm;/,
    );
  });

  it('passes over tensorflow on the CPU, saying which libraries it did not find and what to do', async () => {
    const chosen = await selectBackend('auto', {
      loadTensorflow: fakeTensorflow(false),
      probeGpuAdapter: async () => ({ adapter: null, reason: 'found no GPU adapter' }),
    });
    expect(chosen.name).toBe('wasm');
    expect(chosen.message).toContain(
      'because tensorflow runs on the CPU: @tensorflow/tfjs-node-gpu found no usable GPU (the CUDA 11.2 and cuDNN 8.1 libraries were not found); install those versions, or use --backend webgpu, webgpu found no GPU adapter',
    );
  });

  it('takes tensorflow first when it runs on a GPU', async () => {
    const chosen = await selectBackend('auto', { loadTensorflow: fakeTensorflow(true) });
    expect(chosen).toEqual({
      name: 'tensorflow',
      message: 'backend: tensorflow on the GPU (CUDA, @tensorflow/tfjs-node-gpu)',
      device: 'GPU (CUDA)',
    });
  });

  it('refuses --backend webgpu with no adapter in one line that says what to install', async () => {
    const noAdapter = selectBackend('webgpu', {
      probeGpuAdapter: async () => ({ adapter: null, reason: 'found no GPU adapter' }),
    });
    await expect(noAdapter).rejects.toThrow(UserError);
    await expect(noAdapter).rejects.toThrow(
      /^backend "webgpu" found no GPU adapter; it needs a GPU driver with Vulkan on Linux \(`vulkaninfo` lists/,
    );
  });
});

describe('--backend webgpu on a machine without a GPU driver', () => {
  it.runIf(GPU_DRIVERS_CAN_BE_HIDDEN)(
    'says so in one line and exits with 2 (Linux: a child with no Vulkan driver visible)',
    async () => {
      const result = await runChild(
        ['predict', '--backend', 'webgpu', '--model-dir', 'no-such-model', 'malaria/sample'],
        { env: NO_GPU_DRIVER_ENV },
      );
      expect(result.exitCode).toBe(2);
      expectOneErrorLine(
        result,
        /^malaria: backend "webgpu" found no GPU adapter \(Dawn: .*\); it needs a GPU driver with Vulkan/,
      );
    },
  );
});
