// Test helpers: run the same computation on two backends (wasm or webgpu against cpu) and compare the results.
import { expect } from 'vitest';
import seedrandom from 'seedrandom';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { probeAdapter } from '../../src/backends/webgpu.js';

/** Loads wasm (with the training kernels) and cpu in one process. */
export async function loadBothBackends(): Promise<void> {
  await selectBackend('wasm');
  await selectBackend('cpu'); // through selectBackend, which silences the cpu backend's banner
  await tf.setBackend('wasm');
}

/**
 * A child process's environment in which it sees no GPU driver: Vulkan's loader reads its driver list from these
 * variables, so on Linux this hides every driver. Metal (macOS) and Direct3D (Windows) have no such switch, so the
 * tests of a machine without a driver run only where one can be made (GPU_DRIVERS_CAN_BE_HIDDEN), and say so in
 * their names; everywhere else the webgpu tests need the adapter itself.
 */
export const NO_GPU_DRIVER_ENV = {
  VK_ICD_FILENAMES: '/nonexistent/icd.json',
  VK_DRIVER_FILES: '/nonexistent/icd.json',
};
export const GPU_DRIVERS_CAN_BE_HIDDEN = process.platform === 'linux';

/** How a contributor gets a WebGPU adapter on this platform (scripts/test-setup.sh gives the same advice). */
function webgpuFix(): string {
  if (process.platform === 'darwin')
    return 'macOS gives WebGPU through Metal: reinstall the optional package webgpu (npm ci)';
  return "install a Vulkan driver: on Debian as root, bash scripts/test-setup.sh installs Mesa's (mesa-vulkan-drivers 23.1+, llvmpipe on the CPU); elsewhere your GPU's driver or Mesa 23.1+";
}

/**
 * For the set-up of the webgpu tests: resolves when the `webgpu` package finds an adapter in a process with `env`
 * (any: Metal, a GPU's Vulkan driver, Mesa's llvmpipe), else fails, never skips, in one line naming what is missing
 * and how to get it.
 */
export async function requireWebgpuAdapter(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const probe = await probeAdapter(env);
  if (!probe.adapter) throw new Error(`no WebGPU adapter (the webgpu package ${probe.reason}): ${webgpuFix()}`);
}

export interface HostTensor {
  shape: number[];
  values: Float32Array;
}

/** Seeded uniform values in [-1, 1), so that failures reproduce. */
export function randomHost(shape: number[], seed: string): HostTensor {
  const rng = seedrandom(seed);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = rng() * 2 - 1;
  return { shape, values };
}

export function toTensor(host: HostTensor): tf.Tensor {
  return tf.tensor(host.values, host.shape, 'float32');
}

/** Runs `compute` on `backend` and copies its tensors to host arrays (webgpu reads only asynchronously); nothing stays allocated. */
export async function onBackend(backend: 'wasm' | 'webgpu' | 'cpu', compute: () => tf.Tensor[]): Promise<HostTensor[]> {
  await tf.setBackend(backend);
  const outputs = tf.tidy(compute);
  const values = await Promise.all(outputs.map((t) => t.data() as Promise<Float32Array>));
  const host = outputs.map((t, i) => ({ shape: t.shape.slice(), values: values[i] }));
  tf.dispose(outputs);
  return host;
}

/** Same shape, and every element within `rtol` of the largest magnitude in `expected`. */
export function expectClose(actual: HostTensor, expected: HostTensor, rtol = 1e-4, label = ''): void {
  expect(actual.shape, label).toEqual(expected.shape);
  let scale = 0;
  for (const v of expected.values) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < expected.values.length; i++) {
    worst = Math.max(worst, Math.abs(actual.values[i] - expected.values[i]));
  }
  expect(scale, `${label}: reference is all zeros`).toBeGreaterThan(0);
  expect(worst / scale, `${label}: max error relative to max magnitude`).toBeLessThanOrEqual(rtol);
}
