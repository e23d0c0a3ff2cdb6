// The webgpu backend: TensorFlow.js' WebGPU kernels on Dawn (the `webgpu` package), which reaches the GPU through
// Vulkan (Linux), Metal (macOS) or Direct3D 12 (Windows) instead of CUDA. Both packages are optional dependencies.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { tf } from '../tf.js';

/** What Dawn says about the adapter it would use (GPUAdapterInfo), as plain data. */
export interface GpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn's fallback adapter: a software implementation on the CPU (Mesa's llvmpipe, SwiftShader). */
  isFallbackAdapter: boolean;
}

/** The adapter a fresh process finds, or why it finds none. */
export type AdapterProbe = { adapter: GpuAdapter } | { adapter: null; reason: string };

/** True for a software (CPU) implementation of WebGPU: slower than the wasm backend, used only when asked. */
export function isSoftwareAdapter(adapter: GpuAdapter): boolean {
  return (
    adapter.isFallbackAdapter ||
    adapter.architecture === 'software' ||
    /llvmpipe|lavapipe|swiftshader/i.test(adapter.description)
  );
}

/** The device for the backend line: "NVIDIA GeForce RTX 3060 (nvidia)" or "llvmpipe ... (mesa, a software device ...)". */
export function describeAdapter(adapter: GpuAdapter): string {
  const name = adapter.description || adapter.device || 'unnamed adapter';
  const vendor = adapter.vendor ? `${adapter.vendor}, ` : '';
  const kind = isSoftwareAdapter(adapter) ? 'a software device on the CPU, slower than wasm' : 'a hardware GPU';
  return `${name} (${vendor}${kind})`;
}

const require = createRequire(import.meta.url);

interface GpuAdapterLike {
  info: Partial<GpuAdapter>;
  isFallbackAdapter?: boolean;
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  requestDevice(descriptor: object): Promise<GpuDeviceLike>;
}
interface GpuDeviceLike {
  limits: Record<string, number>;
  lost: Promise<{ message: string }>;
  addEventListener(type: 'uncapturederror', listener: (event: { error: { message: string } }) => void): void;
}
interface Dawn {
  create(options: string[]): { requestAdapter(options?: object): Promise<GpuAdapterLike | null> };
  globals: object;
}

function adapterFacts(adapter: GpuAdapterLike): GpuAdapter {
  const info = adapter.info ?? {};
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
  };
}

// Run in a child process: Dawn prints its driver warnings ("Found no drivers!", llvmpipe's limits) straight to
// the process's stderr, and a broken driver can crash the process that loads it. The parent reads one JSON line.
const PROBE_SCRIPT = `
let dawn;
try {
  dawn = await import(process.argv[1]);
} catch (err) {
  // No Dawn binary for this platform, or one that does not load: say so instead of a stack trace.
  process.stdout.write(JSON.stringify({ unavailable: String(err.message).split('\\n')[0] }));
  process.exit(0);
}
const { create, globals } = dawn;
Object.assign(globalThis, globals);
const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
const info = adapter?.info ?? {};
process.stdout.write(JSON.stringify(adapter && {
  vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '',
  description: info.description ?? '', isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
}));
process.exit(0);
`;

/** The first line of Dawn's own complaint, e.g. "Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file". */
function dawnComplaint(stderr: string): string {
  const line = stderr
    .split('\n')
    .map((l) => l.replace(/^Warning:\s*/, '').trim())
    .find((l) => l && !l.startsWith('at ') && !/artificially reduced/.test(l));
  return line ? ` (Dawn: ${line})` : '';
}

/** Asks a fresh Node process which WebGPU adapter Dawn finds; never throws. */
export async function probeAdapter(env: NodeJS.ProcessEnv = process.env): Promise<AdapterProbe> {
  let entry: string;
  try {
    entry = pathToFileURL(require.resolve('webgpu')).href;
  } catch {
    return { adapter: null, reason: 'is not installed (the optional package webgpu has no build for this platform)' };
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', PROBE_SCRIPT, entry],
      { env, timeout: 60_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        try {
          const adapter = JSON.parse(stdout) as GpuAdapter | { unavailable: string } | null;
          if (adapter && 'unavailable' in adapter) {
            return resolve({
              adapter: null,
              reason: `could not load Dawn's binary for ${process.platform}-${process.arch} (${adapter.unavailable})`,
            });
          }
          if (adapter) return resolve({ adapter });
          resolve({ adapter: null, reason: `found no GPU adapter${dawnComplaint(stderr)}` });
        } catch {
          const how = error?.signal ? `was killed by ${error.signal}` : `failed${dawnComplaint(stderr)}`;
          resolve({ adapter: null, reason: `could not look for a GPU: its probe ${how}` });
        }
      },
    );
  });
}

/** Why every later read fails: the first WebGPU error of the device (an invalid pipeline, a lost device). */
let deviceError: string | undefined;
let loaded: Promise<GpuAdapter> | undefined;

/**
 * Registers the 'webgpu' backend on the first adapter Dawn offers (high-performance preference) and makes it the
 * active backend. The device is created with the adapter's own limits (tfjs asks for a few; the storage-buffer
 * count matters for AddN), and any WebGPU validation error makes the next read of data throw, so a broken kernel
 * can never hand back zeros as results. Returns the adapter.
 */
export function loadWebgpu(): Promise<GpuAdapter> {
  loaded ??= register().catch((err: unknown) => {
    loaded = undefined;
    throw err;
  });
  return loaded.then(async (adapter) => {
    if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
    return adapter;
  });
}

async function register(): Promise<GpuAdapter> {
  const dawn = (await import('webgpu' as string)) as Dawn;
  Object.assign(globalThis, dawn.globals); // GPUBufferUsage, GPUMapMode... which the kernels use by name
  const webgpuBackend = (await import(
    '@tensorflow/tfjs-backend-webgpu'
  )) as typeof import('@tensorflow/tfjs-backend-webgpu');
  const { registerChunkedAddN } = await import('../tf-kernels/webgpu-add-n.js');
  registerChunkedAddN();

  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('Dawn found no GPU adapter');
  const requiredLimits: Record<string, number> = {};
  for (const name of [
    'maxStorageBuffersPerShaderStage',
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeWorkgroupsPerDimension',
    'maxComputeWorkgroupSizeX',
    'maxComputeInvocationsPerWorkgroup',
  ]) {
    if (adapter.limits[name] !== undefined) requiredLimits[name] = adapter.limits[name];
  }
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.addEventListener('uncapturederror', (event) => {
    deviceError ??= event.error.message.split('\n')[0];
  });
  void device.lost.then((info) => {
    deviceError ??= `the GPU device was lost (${info.message || 'no reason given'})`;
  });

  // WebGPUBackend checks for navigator.gpu when constructed (Node 20 has no navigator; 21+ has one without gpu).
  const nav = ((globalThis as { navigator?: object }).navigator ??= {}) as { gpu?: unknown };
  nav.gpu ??= gpu;
  // tfjs' own factory (registered on import when navigator.gpu already existed) would create a device with the
  // default limits: ours replaces it.
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    () => {
      const backend = new webgpuBackend.WebGPUBackend(device as never, adapter.info as never);
      const read = backend.read.bind(backend);
      backend.read = async (dataId) => {
        const values = await read(dataId);
        if (deviceError) throw new Error(`the GPU reported an error, so results cannot be trusted: ${deviceError}`);
        return values;
      };
      return backend;
    },
    3,
  );
  return adapterFacts(adapter);
}
