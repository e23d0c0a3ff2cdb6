// The webgpu backend: TensorFlow.js' WebGPU kernels on Dawn (the `webgpu` package), which reaches the GPU through
// Vulkan (Linux), Metal (macOS) or Direct3D 12 (Windows) instead of CUDA. Both packages are optional dependencies.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { tf } from '../tf.js';
import { UserError } from '../errors.js';
import { DeviceOutOfMemoryError, setStepGuard, type StepGuard } from './device-memory.js';
import { boundPool, type BufferManagerLike } from './webgpu-buffers.js';

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
interface GpuErrorLike {
  message: string;
}
interface GpuDeviceLike {
  limits: Record<string, number>;
  lost: Promise<{ message: string }>;
  addEventListener(type: 'uncapturederror', listener: (event: { error: GpuErrorLike }) => void): void;
  pushErrorScope(filter: 'out-of-memory' | 'validation'): void;
  popErrorScope(): Promise<GpuErrorLike | null>;
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
/** Whether that error was running out of memory (outside a training step, which retries: see guardSteps). */
let deviceOutOfMemory = false;

/** The error every read throws once the device has failed: one line, as a UserError when it ran out of memory. */
function deviceFailure(): Error {
  if (deviceOutOfMemory) {
    return new UserError(
      `the GPU ran out of memory (${deviceError}): use a smaller --batch-size, or close other programs that use the GPU`,
      1,
    );
  }
  return new Error(`the GPU reported an error, so results cannot be trusted: ${deviceError}`);
}
let loaded: Promise<GpuAdapter> | undefined;

/**
 * A cap on the device memory a training step may have in use at once, below what the device has: a step that
 * needs more runs out of memory as it would on a smaller GPU. From MALARIA_WEBGPU_MEMORY_LIMIT_MB, or set here;
 * it is how the tests make a step run out of memory (the buffers tfjs keeps for reuse do not count: what a step
 * needs is then the same whatever ran before it).
 */
let memoryLimitBytes: number | undefined = limitFromEnv(process.env.MALARIA_WEBGPU_MEMORY_LIMIT_MB);

function limitFromEnv(value: string | undefined): number | undefined {
  const megabytes = Number(value);
  return value && Number.isFinite(megabytes) && megabytes > 0 ? megabytes * 2 ** 20 : undefined;
}

/** Sets (or, with undefined, lifts) the cap on the device memory a training step may have in use. */
export function setDeviceMemoryLimit(bytes: number | undefined): void {
  memoryLimitBytes = bytes;
}

/**
 * The training step's guard for this backend: WebGPU error scopes around each step, so running out of memory
 * (which Dawn reports as an error, handing back an unusable buffer, and every use of that buffer as another)
 * voids the step instead of poisoning the device; and the buffer pool, bounded, measured and released on demand.
 */
function guardSteps(device: GpuDeviceLike, buffers: BufferManagerLike): StepGuard {
  let inStep = false;
  let overLimit = false;
  const pool = boundPool(buffers, (size, mappedAtCreation) => {
    if (inStep && memoryLimitBytes !== undefined && buffers.numBytesUsed + size > memoryLimitBytes) {
      overLimit = true;
      // What Dawn does when it cannot back a buffer that is mapped at creation.
      if (mappedAtCreation) throw new RangeError('createBuffer failed to allocate a buffer mapped at creation.');
    }
  });
  return {
    begin() {
      if (inStep) return;
      inStep = true;
      overLimit = false;
      device.pushErrorScope('out-of-memory');
      device.pushErrorScope('validation');
    },
    async end() {
      if (!inStep) return;
      inStep = false;
      const invalid = await device.popErrorScope();
      const outOfMemory = await device.popErrorScope();
      if (outOfMemory || overLimit) {
        const why = outOfMemory ? outOfMemory.message.split('\n')[0] : 'over MALARIA_WEBGPU_MEMORY_LIMIT_MB';
        throw new DeviceOutOfMemoryError(`the GPU ran out of memory (${why})`);
      }
      if (invalid) {
        deviceError ??= invalid.message.split('\n')[0];
        throw deviceFailure();
      }
    },
    releasePooled: () => pool.releaseIdle(),
    bytes: () => ({ held: pool.held(), peak: pool.peak() }),
    resetPeak: () => pool.resetPeak(),
  };
}

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
    if (deviceError === undefined) {
      deviceError = event.error.message.split('\n')[0];
      deviceOutOfMemory = event.error.constructor.name === 'GPUOutOfMemoryError';
    }
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
      setStepGuard(backend, guardSteps(device, backend.bufferManager as unknown as BufferManagerLike));
      const read = backend.read.bind(backend);
      backend.read = async (dataId) => {
        const values = await read(dataId);
        if (deviceError) throw deviceFailure();
        return values;
      };
      return backend;
    },
    3,
  );
  return adapterFacts(adapter);
}
