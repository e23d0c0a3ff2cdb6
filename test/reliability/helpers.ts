// Shared by the reliability tests: the CLI in this process and as a child process, a model whose answers are
// known in advance, and odd-but-valid and broken image files generated on the spot.
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { expect, vi } from 'vitest';
import { main } from '../../src/cli.js';
import { tf } from '../../src/tf.js';
import { saveModel, type ModelMetadata } from '../../src/model/io.js';
import { SAMPLE_DIR, pngBomb, sampleNames, thumbsDb } from '../data/fixtures.js';

export interface CliResult {
  code: number;
  stdout: string[];
  stderr: string[];
}

/**
 * Runs main() in this process, capturing everything it prints (console.log/error/warn/info and direct stream
 * writes) and the exit code. Restores every mock afterwards, so spies set before a run last for that run only.
 */
export async function runInProcess(args: string[]): Promise<CliResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const toStderr = (...parts: unknown[]) => void stderr.push(...parts.map(String).join(' ').split('\n'));
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void stdout.push(...parts.map(String).join(' ').split('\n')));
  for (const method of ['error', 'warn', 'info'] as const) vi.spyOn(console, method).mockImplementation(toStderr);
  const writeStderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const writeStdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  process.exitCode = undefined;
  try {
    await main(['node', 'malaria', ...args]);
    for (const [chunk] of writeStderr.mock.calls) stderr.push(...String(chunk).split(/[\n\r]/).filter(Boolean));
    for (const [chunk] of writeStdout.mock.calls) stdout.push(...String(chunk).split('\n').filter(Boolean));
    return { code: Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    process.exitCode = undefined;
    vi.restoreAllMocks();
  }
}

export interface ChildOptions {
  /** Called with every complete output line (stdout and stderr, progress redraws split on \r); may signal `child`. */
  onLine?: (line: string, child: ReturnType<typeof spawn>) => void;
  /** Extra node flags before bin/malaria.js (for example --import of a test hook). */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

export interface ChildResult extends CliResult {
  /** Exit code, or undefined when a signal ended the process. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** Starts the built CLI (`node bin/malaria.js ...`; `npm test` builds dist/ first) and waits for it to end. */
export function runChild(args: string[], options: ChildOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), 'bin/malaria.js', ...args], {
      env: { ...process.env, MALARIA_DEBUG: '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines = { stdout: [] as string[], stderr: [] as string[] };
    for (const stream of ['stdout', 'stderr'] as const) {
      let pending = '';
      child[stream].setEncoding('utf8');
      child[stream].on('data', (chunk: string) => {
        pending += chunk;
        const parts = pending.split(/[\n\r]/);
        pending = parts.pop() ?? '';
        for (const line of parts.filter(Boolean)) {
          lines[stream].push(line);
          options.onLine?.(line, child);
        }
      });
      child[stream].on('end', () => {
        if (pending) lines[stream].push(pending);
      });
    }
    child.on('error', reject);
    child.on('close', (exitCode, signal) => resolve({ exitCode, signal, code: exitCode ?? -1, ...lines }));
  });
}

/**
 * Runs the built CLI with `args` and sends it Ctrl-C on its first output line starting with `text` (a progress
 * line such as "Epoch 2/4"); the test hook stalls the process a second on that line, so the signal surely lands
 * before the work after it is done. Fails the test if the line never came.
 */
export async function ctrlCAt(args: string[], text: string): Promise<ChildResult> {
  let signalled = false;
  const result = await runChild(args, {
    nodeArgs: ['--import', path.resolve('test/reliability/hold.mjs')],
    env: { MALARIA_TEST_HOLD: `slow:${text}` },
    onLine: (line, child) => {
      if (!signalled && line.startsWith(text)) {
        signalled = true;
        child.kill('SIGINT');
      }
    },
  });
  expect(signalled, `no line started with ${text}`).toBe(true);
  return result;
}

/** Progress bars (build-dataset's scanning/checking/copying, train's epochs) drawn on stderr before an error. */
export const PROGRESS_LINE = /^(scanning|checking|copying|Epoch \d+\/\d+|\S+: \d+ images) +\d+\/\d+ \[[=>.]+\]/;

/** The backend note every command that runs a model prints on stderr before its work (src/report/reporter.ts). */
export const BACKEND_NOTE = /^backend: /;

/**
 * The line a command printed as its error: exactly one on stderr (besides progress bars and the backend note), starting "malaria: "
 * (or commander's "error: "), matching `pattern`, with no stack trace anywhere in the output.
 */
export function expectOneErrorLine(result: CliResult, pattern: RegExp, what = ''): string {
  const all = [...result.stdout, ...result.stderr];
  expect(all.filter((line) => /^\s+at /.test(line)), `${what}: a stack trace`).toEqual([]);
  expect(all.join('\n'), what).not.toMatch(/unexpected error|Error:|Traceback/);
  const errors = result.stderr.filter((line) => line.trim() !== '' && !PROGRESS_LINE.test(line) && !BACKEND_NOTE.test(line));
  expect(errors, `${what}: stderr`).toHaveLength(1);
  expect(errors[0], what).toMatch(/^(malaria|error): /);
  expect(errors[0], what).toMatch(pattern);
  return errors[0];
}

// ---------------------------------------------------------------------------------------------------------------
// A model whose answer is known: P(Parasitized) = sigmoid(10 (m - 0.5)), m the mean pixel value in [0, 1].

export const BRIGHTNESS_SIZE = 32;

export const brightnessMetadata: ModelMetadata = {
  classNames: ['Parasitized', 'Uninfected'],
  imageSize: BRIGHTNESS_SIZE,
  channels: 3,
  scaling: 'x/255',
  resize: 'nearest',
  backend: 'cpu',
  created: '2024-01-02T03:04:05.000Z',
};

/** Global average pooling gives m per channel; the dense layer's logit difference is 10 (m - 0.5). */
export async function saveBrightnessModel(dir: string): Promise<void> {
  const model = tf.sequential({
    layers: [tf.layers.globalAveragePooling2d({ inputShape: [BRIGHTNESS_SIZE, BRIGHTNESS_SIZE, 3] }), tf.layers.dense({ units: 2, activation: 'softmax' })],
  });
  const k = 5 / 3;
  tf.tidy(() => model.layers[1].setWeights([tf.tensor2d([[k, -k], [k, -k], [k, -k]]), tf.tensor1d([-2.5, 2.5])]));
  await saveModel(dir, model, brightnessMetadata);
  model.dispose();
}

/** What the brightness model answers for a uniform image of this gray level. */
export const pParasitized = (gray: number): number => 1 / (1 + Math.exp(-10 * (gray / 255 - 0.5)));

// ---------------------------------------------------------------------------------------------------------------
// Files

const uniform = (gray: number, width = 24, height = 24) =>
  sharp({ create: { width, height, channels: 3, background: { r: gray, g: gray, b: gray } } });

/**
 * Odd but valid images of a uniform gray level, each a different format: file name -> gray level. Each reads
 * as that gray in RGB only if decoded right (a 1-channel read breaks the model's input, alpha flattened on
 * black darkens it, a 16-bit value not scaled back is far off).
 */
export async function writeOddImages(dir: string, grays: readonly number[]): Promise<Map<string, number>> {
  if (grays.length < 8) throw new Error('writeOddImages needs 8 gray levels');
  await fsp.mkdir(dir, { recursive: true });
  const written = new Map<string, number>();
  const write = async (name: string, gray: number, image: ReturnType<typeof sharp>) => {
    await image.toFile(path.join(dir, name));
    written.set(name, gray);
  };
  const [g0, g1, g2, g3, g4, g5, g6, g7] = grays;
  await write('gray.png', g0, uniform(g0).grayscale().png());
  // Half-transparent: the colour must be kept, not blended with a background.
  await write('rgba.png', g1, sharp({ create: { width: 24, height: 24, channels: 4, background: { r: g1, g: g1, b: g1, alpha: 0.5 } } }).png());
  await write('palette.png', g2, uniform(g2).png({ palette: true, colours: 4 }));
  await write('sixteen-bit.png', g3, uniform(g3).toColourspace('rgb16').png());
  await write('really a jpeg.png', g4, uniform(g4).jpeg({ quality: 95 }));
  await write('one-pixel.png', g5, uniform(g5, 1, 1).png());
  await write('cellule numéro 5, "copie".png', g6, uniform(g6).png());
  await write('细胞 Ölprobe.png', g7, uniform(g7).png());
  return written;
}

/** Broken files with image names: each must be set aside, none may stop the command. Returns the names. */
export async function writeBrokenImages(dir: string): Promise<{ names: string[]; bomb: string }> {
  await fsp.mkdir(dir, { recursive: true });
  const [name] = await sampleNames('Parasitized', 1);
  const real = await fsp.readFile(path.join(SAMPLE_DIR, 'Parasitized', name));
  await fsp.writeFile(path.join(dir, 'truncated.png'), real.subarray(0, Math.floor(real.length / 2)));
  await fsp.writeFile(path.join(dir, 'zero-bytes.png'), '');
  await fsp.writeFile(path.join(dir, 'text.jpg'), 'this is a note, not a picture\n');
  // 138 bytes that claim 60,000 x 60,000 = 3.6 billion pixels.
  await fsp.writeFile(path.join(dir, 'bomb.png'), pngBomb(60_000, 60_000));
  return { names: ['bomb.png', 'text.jpg', 'truncated.png', 'zero-bytes.png'], bomb: 'bomb.png' };
}

/** Files that are not images at all and carry no image name: skipped without complaint. */
export async function writeNonImages(dir: string): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'Thumbs.db'), thumbsDb());
  // A Finder .DS_Store starts with its "Bud1" buddy-allocator header.
  await fsp.writeFile(path.join(dir, '.DS_Store'), Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from('Bud1'), Buffer.alloc(200, 0)]));
  await fsp.writeFile(path.join(dir, 'notes.txt'), 'slide 12, stained 2024-03-02\n');
  return ['.DS_Store', 'Thumbs.db', 'notes.txt'];
}
