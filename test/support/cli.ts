// Runs the CLI in tests: main() in this process (no build needed), or the built bin/malaria.js as a child process
// (`npm test` builds dist/ first), and checks the one error line a command prints.
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, vi } from 'vitest';
import { main } from '../../src/cli.js';

/** `node --import` of the test hook (hold.mjs) that stalls the CLI at an exact point, so a test can kill it there. */
export const HOLD_HOOK = ['--import', path.resolve('test/support/hold.mjs')];

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
  vi.spyOn(console, 'log').mockImplementation(
    (...parts: unknown[]) => void stdout.push(...parts.map(String).join(' ').split('\n')),
  );
  for (const method of ['error', 'warn', 'info'] as const) vi.spyOn(console, method).mockImplementation(toStderr);
  const writeStderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const writeStdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  process.exitCode = undefined;
  try {
    await main(['node', 'malaria', ...args]);
    for (const [chunk] of writeStderr.mock.calls)
      stderr.push(
        ...String(chunk)
          .split(/[\n\r]/)
          .filter(Boolean),
      );
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
    nodeArgs: HOLD_HOOK,
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
  expect(
    all.filter((line) => /^\s+at /.test(line)),
    `${what}: a stack trace`,
  ).toEqual([]);
  expect(all.join('\n'), what).not.toMatch(/unexpected error|Error:|Traceback/);
  const errors = result.stderr.filter(
    (line) => line.trim() !== '' && !PROGRESS_LINE.test(line) && !BACKEND_NOTE.test(line),
  );
  expect(errors, `${what}: stderr`).toHaveLength(1);
  expect(errors[0], what).toMatch(/^(malaria|error): /);
  expect(errors[0], what).toMatch(pattern);
  return errors[0];
}

/** Runs the built CLI (`npm run build` first; `npm test` does it) and returns exit code and output. */
export async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['bin/malaria.js', ...args], {
      env: { ...process.env, MALARIA_DEBUG: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
