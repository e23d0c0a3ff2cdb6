import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { runCli } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { writeTinyModel } from '../support/models.js';

describe('malaria app (CLI)', () => {
  let work: string;
  let modelDir: string;

  beforeAll(async () => {
    await selectBackend('cpu');
    work = await makeTempDir('malaria-app-cli-');
    modelDir = path.join(work, 'model');
    (await writeTinyModel(modelDir, [], { threshold: 0.35 })).dispose();
  });
  afterAll(async () => removeDir(work));

  it('writes the app and says how to open it', async () => {
    const out = path.join(work, 'app');
    const { code, stdout, stderr } = await runCli(['app', '--model-dir', modelDir, '--out', out]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(
      new RegExp(
        `^wrote the app to ${out}: \\d+ files, [\\d.]+ MB; it starts at threshold 0.35 \\(saved with the model\\)\\n`,
      ),
    );
    expect(stdout).toContain('malaria app --serve');
    expect(await fs.readFile(path.join(out, 'index.html'), 'utf8')).toContain('<title>Malaria cell screen</title>');
  });

  /**
   * Runs `malaria app --serve` with `args` until it prints the URL it serves at, then `check`s it with what it has
   * printed on stderr so far (a function: output may still arrive), and stops it with Ctrl-C: it must exit 0.
   */
  async function whileServing(
    args: string[],
    check: (url: string, stderr: () => string) => Promise<void>,
  ): Promise<void> {
    const child = spawn(process.execPath, [
      'bin/malaria.js',
      'app',
      '--model-dir',
      modelDir,
      '--serve',
      '--port',
      '0',
      ...args,
    ]);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      let stdout = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          // On 0.0.0.0 the machine's network addresses follow the loopback one.
          const match =
            /serving the app at (http:\/\/127\.0\.0\.1:\d+\/)( and http:\/\/[\d.]+:\d+\/)* \(Ctrl-C to stop\)/.exec(
              stdout,
            );
          if (match) resolve(match[1]);
        });
        child.on('exit', () => reject(new Error(`the server exited early: ${stdout}${stderr}`)));
      });
      await check(url, () => stderr);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }

  it('with --serve, serves the app on 127.0.0.1, prints the URL and stops on Ctrl-C', async () => {
    await whileServing(['--out', path.join(work, 'served')], async (url, stderr) => {
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Malaria cell screen</title>');
      expect((await fetch(`${url}model/model.json`)).status).toBe(200);
      // On 127.0.0.1 the page is a secure context: no note about offline use.
      expect(stderr()).toBe('');
    });
  });

  it('with --serve --host 0.0.0.0, serves on every address and says offline use needs https or localhost', async () => {
    await whileServing(['--out', path.join(work, 'lan'), '--host', '0.0.0.0'], async (url, stderr) => {
      expect((await fetch(url)).status).toBe(200);
      await vi.waitFor(() =>
        expect(stderr()).toContain(
          'note: other devices reach the app over plain http, where browsers allow no service worker',
        ),
      );
      expect(stderr()).toContain('serve it over https');
    });
  });

  it('a missing model folder exits 2 with one line', async () => {
    const missing = path.join(work, 'nowhere');
    const { code, stdout, stderr } = await runCli(['app', '--model-dir', missing, '--out', path.join(work, 'x')]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(missing);
  });

  it('a bad --port exits 2 naming the flag', async () => {
    for (const port of ['70000', '-1', 'http']) {
      const { code, stderr } = await runCli(['app', '--model-dir', modelDir, '--serve', '--port', port]);
      expect(code, port).toBe(2);
      expect(stderr, port).toMatch(/--port.*port number from 0 to 65535/);
    }
  });
});
