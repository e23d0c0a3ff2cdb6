// What a contributor's machine needs for `npm test` (a browser, a WebGPU adapter): scripts/test-setup.sh names what
// is missing and goes on, and the tests that need it fail in one line naming the fix. Simulated honestly: a
// CHROME_PATH that names nothing, Vulkan drivers hidden from the loader, the script run by a user who cannot install.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeAdapter } from '../../src/backends/webgpu.js';
import { NO_GPU_DRIVER_ENV, requireWebgpuAdapter } from '../support/backends.js';
import { CHROME_LOCATIONS, findChrome } from '../support/browser.js';
import { makeTempDir, removeDir } from '../support/temp.js';

const SCRIPT = path.resolve('scripts/test-setup.sh');
/** The Vulkan loader reads its drivers from these lists: pointing them at nothing hides every driver (on Linux). */
const NO_VULKAN = NO_GPU_DRIVER_ENV;
const MISSING_CHROME = '/nonexistent/chrome';

/**
 * Runs scripts/test-setup.sh as a user who cannot install anything: `nobody` (through setpriv) when the tests run
 * as root, so that it never installs a package from a test; ourselves otherwise.
 */
function runSetup(env: Record<string, string>): Promise<{ code: number; stderr: string[] }> {
  const asRoot = process.getuid?.() === 0;
  const [command, ...args] = asRoot
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'bash', SCRIPT]
    : ['bash', SCRIPT];
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (asRoot) childEnv.HOME = '/nonexistent';
  // The node the script asks for an adapter: this one.
  childEnv.PATH = `${path.dirname(process.execPath)}${path.delimiter}${childEnv.PATH ?? ''}`;
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: childEnv, cwd: '/' }, (error, _stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        return reject(new Error(`could not run ${command}: ${error.message} (setpriv comes with util-linux)`));
      }
      resolve({ code: error ? Number(error.code) : 0, stderr: stderr.split('\n').filter(Boolean) });
    });
  });
}

describe('findChrome', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir('malaria-chrome-');
  });
  afterAll(() => removeDir(dir));

  it('fails in one line when CHROME_PATH names no program, even when a browser is installed', async () => {
    expect(() => findChrome({ CHROME_PATH: MISSING_CHROME })).toThrow(
      new Error(`CHROME_PATH=${MISSING_CHROME} is not an executable file: point it at Chrome or Chromium, or unset it`),
    );
    const notExecutable = path.join(dir, 'chrome');
    await fsp.writeFile(notExecutable, '');
    await fsp.chmod(notExecutable, 0o644);
    expect(() => findChrome({ CHROME_PATH: notExecutable })).toThrow(/is not an executable file/);
    expect(() => findChrome({ CHROME_PATH: dir })).toThrow(/is not an executable file/);
    expect(findChrome({ CHROME_PATH: process.execPath })).toBe(process.execPath);
  });

  it('takes the first usual place that holds a program, and names the fix when none does', () => {
    const nowhere = [path.join(dir, 'chromium'), MISSING_CHROME];
    expect(() => findChrome({}, nowhere)).toThrow(
      new Error(
        `no Chrome or Chromium found: install chromium or set CHROME_PATH (looked at ${nowhere.join(', ')}; on Debian as root, bash scripts/test-setup.sh installs it)`,
      ),
    );
    expect(findChrome({}, [...nowhere, process.execPath])).toBe(process.execPath);
  });

  it('looks in the same places as scripts/test-setup.sh', async () => {
    const script = await fsp.readFile(SCRIPT, 'utf8');
    const list = /^chrome_locations=\(\n([\s\S]*?)\n\)$/m.exec(script);
    expect(list, 'chrome_locations=( ... ) in the script').not.toBeNull();
    const locations = (list as RegExpExecArray)[1].split('\n').map((line) => line.trim().replace(/^'(.*)'$/, '$1'));
    expect(locations).toEqual(CHROME_LOCATIONS);
  });
});

describe('requireWebgpuAdapter', () => {
  it('fails in one line naming the fix when the webgpu package finds no adapter, and passes when it finds one', async () => {
    // With the Vulkan drivers hidden, Linux has no adapter; macOS still has Metal.
    const probe = await probeAdapter({ ...process.env, ...NO_VULKAN });
    const check = requireWebgpuAdapter({ ...process.env, ...NO_VULKAN });
    if (probe.adapter) await expect(check).resolves.toBeUndefined();
    else {
      await expect(check).rejects.toThrow(
        /^no WebGPU adapter \(the webgpu package (found no GPU adapter|is not installed|could not).*\): (install a Vulkan driver|macOS gives WebGPU through Metal)[^\n]*$/,
      );
    }
  });
});

describe('scripts/test-setup.sh for a user who cannot install', () => {
  it('names what is missing and how to get it, one line each, and exits 0 so that the other tests still run', async () => {
    const env = { CHROME_PATH: MISSING_CHROME, ...NO_VULKAN };
    const { code, stderr } = await runSetup(env);
    expect(code, stderr.join('\n')).toBe(0);
    const probe = await probeAdapter({ ...process.env, ...env });
    expect(stderr).toEqual([
      `test setup: CHROME_PATH=${MISSING_CHROME} is not an executable file: point it at Chrome or Chromium, or unset it; the browser tests will fail until then`,
      ...(probe.adapter
        ? []
        : [expect.stringMatching(/^test setup: no WebGPU adapter \(.+\): .+; the webgpu tests will fail until then$/)]),
    ]);
  });

  it('on this machine as it is: says a browser is missing exactly when the browser tests would find none', async () => {
    const { code, stderr } = await runSetup({});
    expect(code, stderr.join('\n')).toBe(0);
    let chromeProblem: string | undefined;
    try {
      findChrome();
    } catch (err) {
      chromeProblem = (err as Error).message;
    }
    const browserLines = stderr.filter((line) => line.includes('the browser tests will fail'));
    if (chromeProblem === undefined) expect(browserLines).toEqual([]);
    else
      expect(browserLines).toEqual([expect.stringMatching(/^test setup: (no Chrome or Chromium found|CHROME_PATH=)/)]);
    // Nothing else than the two kinds of line: no error of the script itself.
    expect(stderr.filter((line) => !/the (browser|webgpu) tests will fail until then$/.test(line))).toEqual([]);
  });
});
