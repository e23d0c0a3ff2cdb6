// Chooses and loads the TensorFlow.js backend. The loaders of the optional engines live beside it in src/backends/
// (imported lazily: each pulls in large native code).
import os from 'node:os';
import { tf } from '../tf.js';
import { UserError } from '../errors.js';
import { wasmThreads } from './wasm.js';
import type { AdapterProbe } from './webgpu.js';
import type { TensorflowDevice } from './tensorflow.js';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;
/** The --backend option's help. */
export const BACKEND_HELP =
  'auto, tensorflow, webgpu, wasm or cpu (auto: the fastest that loads; `malaria backends` lists them)';
/** The order `auto` tries them in, fastest first. */
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** One line for the user: which backend runs on which device and, after a fallback, why and how to go faster. */
  message: string;
  /** The device it computes on, in a few words ("CPU, 2 threads", a GPU's name). */
  device: string;
}

/** What the choice reads from the machine; tests replace parts to stand for other machines. */
export interface BackendMachine {
  env: NodeJS.ProcessEnv;
  cores: number;
  /** The WebGPU adapter a fresh process finds (Dawn's driver messages stay in that process). */
  probeGpuAdapter: (env: NodeJS.ProcessEnv) => Promise<AdapterProbe>;
  /** Loads tfjs-node-gpu or tfjs-node, makes 'tensorflow' active and says whether it runs on a GPU. */
  loadTensorflow: () => Promise<TensorflowDevice>;
}

const thisMachine = (): BackendMachine => ({
  env: process.env,
  cores: os.availableParallelism(),
  probeGpuAdapter: async (env) => (await import('./webgpu.js')).probeAdapter(env),
  loadTensorflow: async () => (await import('./tensorflow.js')).loadTensorflow(),
});

const FASTER_HINT =
  'to go faster, use a GPU: webgpu needs a Vulkan driver on Linux (`npx malaria backends` shows what this machine has), ' +
  'tensorflow needs @tensorflow/tfjs-node-gpu with CUDA 11.2 and cuDNN 8.1';

let active: BackendInfo | undefined;

export function parseBackendChoice(value: string): BackendChoice {
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new UserError(`unknown backend "${value}": use one of ${BACKEND_CHOICES.join(', ')}`);
}

export { wasmThreads };

/** The settings every backend reads, checked before any backend loads: a bad one is never a reason to fall back. */
interface Settings {
  wasmThreads: number;
}

function checkSettings(machine: BackendMachine): Settings {
  return { wasmThreads: wasmThreads(machine.env, machine.cores) };
}

/** Thrown by a loader when the backend loads but `auto` should not take it (a software GPU, TensorFlow on CPU). */
class NotForAuto extends Error {}

/** What a loader tells the backend line: the rest of the line after the name, and the device alone. */
interface Loaded {
  detail: string;
  device: string;
}

async function loadTensorflowBackend(machine: BackendMachine, _settings: Settings, auto = false): Promise<Loaded> {
  const device = await machine.loadTensorflow();
  const { describeTensorflowDevice } = await import('./tensorflow.js');
  if (auto && !device.gpu) throw new NotForAuto(`tensorflow runs ${describeTensorflowDevice(device)}`);
  return { detail: ` ${describeTensorflowDevice(device)}`, device: device.gpu ? 'GPU (CUDA)' : 'CPU (libtensorflow)' };
}

async function loadWebgpuBackend(machine: BackendMachine, _settings: Settings, auto = false): Promise<Loaded> {
  const probe = await machine.probeGpuAdapter(machine.env);
  if (!probe.adapter) throw new Error(probe.reason);
  const { describeAdapter, isSoftwareAdapter, loadWebgpu } = await import('./webgpu.js');
  if (auto && isSoftwareAdapter(probe.adapter)) {
    throw new NotForAuto(
      `webgpu has only a software device (${probe.adapter.description || probe.adapter.device}), slower than wasm`,
    );
  }
  const device = describeAdapter(await loadWebgpu());
  return { detail: ` on ${device}`, device };
}

async function loadWasmBackend(_machine: BackendMachine, settings: Settings): Promise<Loaded> {
  const { loadWasm } = await import('./wasm.js');
  const { threads, note } = await loadWasm(settings.wasmThreads);
  return { detail: note, device: `CPU, ${threads === 1 ? 'one thread' : `${threads} threads`}` };
}

async function loadCpuBackend(): Promise<Loaded> {
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
  // The cpu backend prints a banner on first use; our own backend line already says what to install.
  (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
  return { detail: '', device: 'CPU, plain JavaScript' };
}

/** Loads one backend and makes it active; returns the rest of its backend line (device, threads). */
type Loader = (machine: BackendMachine, settings: Settings, auto: boolean) => Promise<Loaded>;

const LOADERS: Record<BackendName, Loader> = {
  tensorflow: loadTensorflowBackend,
  webgpu: loadWebgpuBackend,
  wasm: loadWasmBackend,
  cpu: loadCpuBackend,
};

/** Why a backend did not load, in a few words. */
function reason(name: BackendName, err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof NotForAuto) return text;
  if (/Cannot find (package|module)/.test(text)) return `${name} is not installed`;
  if (name === 'webgpu' && /^(found no|could not|is not installed)/.test(text)) return `${name} ${text}`;
  return `${name} failed to load (${text.split('\n')[0]})`;
}

const EXPLICIT_HINTS: Record<BackendName, string> = {
  tensorflow:
    'install @tensorflow/tfjs-node-gpu (needs internet access during npm install; CUDA 11.2 and cuDNN 8.1 for the GPU), or use --backend webgpu or wasm',
  webgpu:
    "it needs a GPU driver with Vulkan on Linux (`vulkaninfo` lists the devices; NVIDIA's driver includes it), Metal on macOS or Direct3D 12 on Windows; or use --backend auto",
  wasm: 'use --backend auto',
  cpu: 'use --backend auto',
};

/**
 * Selects a backend. `auto` takes the fastest that loads: tensorflow when it really runs on a GPU, webgpu on a
 * hardware GPU, wasm, then the pure-JS cpu backend; a software WebGPU device only when asked for by name. Every
 * setting is checked first, and a bad one is a UserError (never a reason to fall back); so is an explicit choice
 * that cannot load. Idempotent for the same choice. `machine` replaces parts of what is read from this machine
 * (and then the choice is made afresh).
 */
export async function selectBackend(
  choice: BackendChoice = 'auto',
  machine: Partial<BackendMachine> = {},
): Promise<BackendInfo> {
  const facts = { ...thisMachine(), ...machine };
  const settings = checkSettings(facts);
  // A caller that describes another machine (tests, `malaria backends`) wants a fresh decision.
  const fresh = Object.keys(machine).length > 0;
  if (active && !fresh && (choice === 'auto' || choice === active.name)) return active;
  if (choice !== 'auto') {
    let loaded: Loaded;
    try {
      loaded = await LOADERS[choice](facts, settings, false);
      await tf.ready();
    } catch (err) {
      if (err instanceof UserError) throw err;
      const why = reason(choice, err).replace(new RegExp(`^${choice} `), '');
      throw new UserError(`backend "${choice}" ${why}; ${EXPLICIT_HINTS[choice]}`);
    }
    active = {
      name: choice,
      message: `backend: ${choice} (chosen with --backend)${loaded.detail}`,
      device: loaded.device,
    };
    return active;
  }
  const failures: string[] = [];
  for (const name of BACKEND_NAMES) {
    let loaded: Loaded;
    try {
      loaded = await LOADERS[name](facts, settings, true);
      await tf.ready();
    } catch (err) {
      if (err instanceof UserError) throw err;
      failures.push(reason(name, err));
      continue;
    }
    const why = failures.length ? ` because ${failures.join(', ')}` : '';
    const hint = name === 'tensorflow' || name === 'webgpu' ? '' : `; ${FASTER_HINT}`;
    active = { name, message: `backend: ${name}${loaded.detail}${why}${hint}`, device: loaded.device };
    return active;
  }
  throw new UserError(`no TensorFlow.js backend could load: ${failures.join('; ')}`, 1);
}
