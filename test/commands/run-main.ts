// Runs the CLI: main() in this process (no build needed), or the built bin/malaria.js as a child process.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { vi } from 'vitest';
import { main } from '../../src/cli.js';

export interface RunResult {
  code: number;
  stdout: string[];
  stderr: string[];
}

export async function runMain(args: string[]): Promise<RunResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void stdout.push(parts.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void stderr.push(parts.join(' ')));
  // Progress bars and commander write to the streams directly.
  const writeStderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const writeStdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  process.exitCode = undefined;
  try {
    await main(['node', 'malaria', ...args]);
    for (const [chunk] of writeStderr.mock.calls) stderr.push(...String(chunk).split('\n').filter(Boolean));
    for (const [chunk] of writeStdout.mock.calls) stdout.push(...String(chunk).split('\n').filter(Boolean));
    return { code: Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    process.exitCode = undefined;
    vi.restoreAllMocks();
  }
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
