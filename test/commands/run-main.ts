// Runs the CLI's main() in this process (no build needed), capturing console output and the exit code.
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
