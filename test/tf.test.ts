// The backend choice: how many wasm threads, and the default (threaded) wasm build run end to end by the CLI.
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { selectBackend, wasmThreads } from '../src/tf.js';
import { expectOneErrorLine, runChild, runInProcess } from './support/cli.js';
import { makeTempDir, removeDir } from './support/temp.js';
import { saveBrightnessModel } from './support/models.js';

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
  it('is the user\'s error, not a silent fall back to the cpu backend', async () => {
    const saved = process.env.MALARIA_WASM_THREADS;
    process.env.MALARIA_WASM_THREADS = 'many';
    try {
      await expect(selectBackend('auto')).rejects.toThrow(UserError);
    } finally {
      if (saved === undefined) delete process.env.MALARIA_WASM_THREADS;
      else process.env.MALARIA_WASM_THREADS = saved;
    }
  });
});

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
    const cores = os.availableParallelism();
    expect(wasm.stderr[0]).toBe(`backend: wasm (chosen with --backend) ${cores > 1 ? `with ${cores} threads` : 'on one thread'}`);
    type Answer = { file: string; label: string; probability: number };
    const wasmAnswers = JSON.parse(wasm.stdout.join('\n')) as Answer[];
    const cpuAnswers = JSON.parse(cpu.stdout.join('\n')) as Answer[];
    expect(wasmAnswers.map((a) => a.label)).toEqual(cpuAnswers.map((a) => a.label));
    wasmAnswers.forEach((answer, i) => expect(answer.probability).toBeCloseTo(cpuAnswers[i].probability, 5));
  });

  it('falls back to the one-thread build, saying why, when the threaded build cannot start', async () => {
    // The threaded build writes its worker script to the temp folder; one that does not exist stops it.
    const missing = path.join(dir, 'no-such-temp-folder');
    const result = await runChild(['predict', '--model-dir', path.join(dir, 'model'), '--backend', 'wasm', '--json', images[0]], {
      env: { MALARIA_WASM_THREADS: '2', TMPDIR: missing },
    });
    expect(result.exitCode, result.stderr.join('\n')).toBe(0);
    expect(result.stderr[0]).toMatch(/^backend: wasm \(chosen with --backend\) on one thread \(its threaded build did not start: ENOENT.*no-such-temp-folder/);
    expect(JSON.parse(result.stdout.join('\n'))).toHaveLength(1);
  });

  it('leaves nothing in the temp folder', async () => {
    const temp = await mkdtemp(path.join(dir, 'temp-'));
    const result = await runChild(['predict', '--model-dir', path.join(dir, 'model'), '--backend', 'wasm', '--json', images[0]], {
      env: { MALARIA_WASM_THREADS: '2', TMPDIR: temp },
    });
    expect(result.exitCode, result.stderr.join('\n')).toBe(0);
    expect(await readdir(temp)).toEqual([]);
  });

  it('says in --help how to change the thread count', async () => {
    const help = await runInProcess(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.join('\n')).toMatch(/MALARIA_WASM_THREADS=N +threads of the wasm backend \(default: one per core/);
  });

  it('refuses a bad MALARIA_WASM_THREADS in one line, exit 2', async () => {
    const result = await runChild(['predict', '--model-dir', path.join(dir, 'model'), '--json', images[0]], {
      env: { MALARIA_WASM_THREADS: 'lots' },
    });
    expect(result.exitCode).toBe(2);
    expectOneErrorLine(result, /MALARIA_WASM_THREADS must be a whole number of threads, 1 or more, got "lots"/);
  });
});
