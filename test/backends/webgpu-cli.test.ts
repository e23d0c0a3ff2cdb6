// The CLI end to end on the webgpu backend (in CI: Mesa's software Vulkan device), on the bundled sample: split,
// train a tiny ResNet for a few epochs, evaluate, predict and export, each in its own process as a user runs them;
// the predictions match the wasm backend's for the same model.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Survey } from '../../src/workflows/backends-survey.js';
import { TINY_MODEL_FLAGS } from '../support/models.js';
import { requireWebgpuAdapter } from '../support/backends.js';
import { runChild } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';

/** A small network and a short run: each webgpu step takes seconds on llvmpipe. */
const SMALL_RUN = [
  '--epochs',
  '2',
  '--batch-size',
  '16',
  '--image-size',
  '32',
  '--stages',
  '1,1,1',
  '--filters',
  '8,8,16,32',
];

type Answer = { file: string; label: string; probability: number };

/** Lines of a child's output that are ours (Dawn prints driver warnings of the software device to stderr). */
const ours = (lines: string[]) => lines.filter((line) => !line.startsWith('Warning: '));

describe('malaria on --backend webgpu', () => {
  let dir: string;
  const data = () => path.join(dir, 'data');
  const model = () => path.join(dir, 'model');
  beforeAll(async () => {
    await requireWebgpuAdapter();
    dir = await makeTempDir('malaria-webgpu-cli-');
  });
  afterAll(() => removeDir(dir));

  it('splits, trains, evaluates, predicts and exports; predictions match wasm within 1e-4', async () => {
    const split = await runChild(['build-dataset', '--input', 'malaria/sample', '--output', data()]);
    expect(split.exitCode, split.stderr.join('\n')).toBe(0);

    const train = await runChild([
      'train',
      '--backend',
      'webgpu',
      '--data',
      data(),
      '--model-dir',
      model(),
      '--plot',
      path.join(dir, 'plot.png'),
      ...SMALL_RUN,
    ]);
    expect(train.exitCode, train.stderr.join('\n')).toBe(0);
    // The backend line is a note, on stderr like every command's (src/report/reporter.ts).
    expect(ours(train.stderr)[0]).toMatch(
      /^backend: webgpu \(chosen with --backend\) on .+\((.+, )?(a hardware GPU|a software device on the CPU, slower than wasm)\)$/,
    );
    // One step per batch of 16 on webgpu: no micro-batches.
    expect(train.stdout.join('\n')).not.toMatch(/micro-batches/);
    expect(train.stdout.filter((line) => /^Epoch \d\/2 .* loss: \d/.test(line))).toHaveLength(2);

    const evaluate = await runChild([
      'evaluate',
      '--backend',
      'webgpu',
      '--data',
      data(),
      '--model-dir',
      model(),
      '--json',
    ]);
    expect(evaluate.exitCode, evaluate.stderr.join('\n')).toBe(0);
    const report = JSON.parse(evaluate.stdout.join('\n')) as { n: number; accuracy: number };
    expect(report.n).toBe(40);
    expect(report.accuracy).toBeGreaterThanOrEqual(0);

    const testing = path.join(data(), 'testing');
    const predict = (backend: string, modelDir = model()) =>
      runChild(['predict', '--backend', backend, '--model-dir', modelDir, '--json', testing]);
    const [onGpu, onWasm] = await Promise.all([predict('webgpu'), predict('wasm')]);
    expect(onGpu.exitCode, onGpu.stderr.join('\n')).toBe(0);
    expect(onWasm.exitCode, onWasm.stderr.join('\n')).toBe(0);
    const gpuAnswers = JSON.parse(onGpu.stdout.join('\n')) as Answer[];
    const wasmAnswers = JSON.parse(onWasm.stdout.join('\n')) as Answer[];
    expect(gpuAnswers).toHaveLength(40);
    expect(gpuAnswers.map((a) => a.file)).toEqual(wasmAnswers.map((a) => a.file));
    gpuAnswers.forEach((answer, i) => {
      // A probability near 0.5 may round to either label; the probabilities of the same label agree.
      const wasmP = wasmAnswers[i].label === answer.label ? wasmAnswers[i].probability : 1 - wasmAnswers[i].probability;
      expect(Math.abs(answer.probability - wasmP), answer.file).toBeLessThanOrEqual(1e-4);
    });

    const exported = path.join(dir, 'export');
    const exporting = await runChild([
      'export',
      '--backend',
      'webgpu',
      '--model-dir',
      model(),
      '--out',
      exported,
      '--quantize',
      'float16',
    ]);
    expect(exporting.exitCode, exporting.stderr.join('\n')).toBe(0);
    const fromExport = await predict('webgpu', exported);
    expect(fromExport.exitCode, fromExport.stderr.join('\n')).toBe(0);
    const exportAnswers = JSON.parse(fromExport.stdout.join('\n')) as Answer[];
    exportAnswers.forEach((answer, i) => {
      const p = gpuAnswers[i].label === answer.label ? gpuAnswers[i].probability : 1 - gpuAnswers[i].probability;
      expect(Math.abs(answer.probability - p), answer.file).toBeLessThanOrEqual(5e-3); // float16 weights
    });
    // Nothing but the backend line and progress: no tfjs warnings (a synchronous read would warn, then fail).
    expect(ours(onGpu.stderr)[0]).toMatch(/^backend: webgpu/);
    expect(ours(onGpu.stderr).join('\n')).not.toMatch(/synchronously|error|warn/i);
  });

  it('keeps training when a step runs out of GPU memory: one line, micro-batches halved, every epoch done', async () => {
    const folder = path.join(dir, 'oom');
    const split = await runChild(['build-dataset', '--input', 'malaria/sample', '--output', path.join(folder, 'data')]);
    expect(split.exitCode, split.stderr.join('\n')).toBe(0);
    // This net's step needs ~8.4 MB of device memory at 16 images per pass and ~4.5 MB at 8 (on llvmpipe).
    const train = await runChild(
      [
        'train',
        '--backend',
        'webgpu',
        '--data',
        path.join(folder, 'data'),
        '--model-dir',
        path.join(folder, 'model'),
        '--plot',
        path.join(folder, 'plot.png'),
        ...SMALL_RUN,
      ],
      { env: { MALARIA_WEBGPU_MEMORY_LIMIT_MB: '6' } },
    );
    expect(train.exitCode, train.stderr.join('\n')).toBe(0);
    const said = ours(train.stderr).filter((line) => /out of memory/.test(line));
    expect(said).toEqual([
      'the GPU ran out of memory with 16 images per pass: retrying the batch, and training from now on, in micro-batches of 8 with summed gradients (batch norm sees 8 images at a time)',
    ]);
    expect(train.stderr.join('\n')).not.toMatch(/^\s+at /m);
    expect(train.stdout.filter((line) => /^Epoch \d\/2 .* loss: \d/.test(line))).toHaveLength(2);
    const checkpoint = await fs.readdir(path.join(folder, 'model'));
    for (const file of checkpoint.filter((name) => name.endsWith('.json'))) {
      expect(await fs.readFile(path.join(folder, 'model', file), 'utf8'), file).not.toMatch(/micro/i);
    }
  });

  it('backends reports the device memory a training step used on webgpu', async () => {
    const result = await runChild([
      'backends',
      '--json',
      '--only',
      'webgpu',
      ...TINY_MODEL_FLAGS,
      '--batch-size',
      '4',
      '--seconds',
      '0.2',
    ]);
    expect(result.exitCode, result.stderr.join('\n')).toBe(0);
    const [webgpu] = (JSON.parse(result.stdout.join('\n')) as Survey).backends;
    expect(webgpu).toMatchObject({
      backend: 'webgpu',
      loads: true,
      memoryKind: 'device',
      memoryBytes: expect.any(Number),
    });
    expect(webgpu.memoryBytes).toBeGreaterThan(0);
  });
});
