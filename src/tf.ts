// The one module that imports TensorFlow.js and chooses its backend. Everything else imports `tf` from here.
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import { UserError } from './errors.js';

export { tf };

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  name: BackendName;
  /** One line for the user: which backend runs and, after a fallback, why and what to install to go faster. */
  message: string;
}

const GPU_HINT =
  'install @tensorflow/tfjs-node-gpu (needs internet access during npm install; CUDA 11.2 and cuDNN 8.1 for the GPU)';

let active: BackendInfo | undefined;

/** The backend chosen by `selectBackend`, if any. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}

export function parseBackendChoice(value: string): BackendChoice {
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new UserError(`unknown backend "${value}": use one of ${BACKEND_CHOICES.join(', ')}`);
}

async function loadTensorflow(): Promise<void> {
  // tfjs-node-gpu registers the 'tensorflow' backend (libtensorflow, CUDA when present) on import.
  // It is an optional dependency: absent wherever its install script could not download libtensorflow.
  await import('@tensorflow/tfjs-node-gpu' as string);
  if (!(await tf.setBackend('tensorflow'))) throw new Error('the tensorflow backend did not initialise');
}

/**
 * The threaded wasm build starts 8 workers up front; more threads would need workers started while the main thread
 * waits for them, which never happens. (Containers can also report the host's cores, not their own share.)
 */
const MAX_WASM_THREADS = 8;

/**
 * Threads for the wasm backend: one per core by default (its threaded build, started by our workaround, since tfjs
 * does not under Node), or MALARIA_WASM_THREADS. Measured on 2 cores: ~1.5x training and ~1.9x inference when
 * the cores are idle; with another process keeping one core busy, ~0.9x training and ~1.2x inference.
 */
export function wasmThreads(env: NodeJS.ProcessEnv = process.env, cores = os.availableParallelism()): number {
  const limit = Math.max(1, Math.min(cores, MAX_WASM_THREADS));
  const raw = env.MALARIA_WASM_THREADS;
  if (raw === undefined || raw === '') return limit;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new UserError(`MALARIA_WASM_THREADS must be a whole number of threads, 1 or more, got "${raw}"`);
  }
  return Math.min(value, limit);
}

/** How the wasm backend runs once loaded: its thread count, and why not threaded when its threaded build failed. */
let wasmRun: { threads: number; threadedFailure?: string } = { threads: 1 };

async function loadWasm(): Promise<void> {
  const threads = wasmThreads(); // first: a bad setting must not leave a half-registered backend behind
  await import('@tensorflow/tfjs-backend-wasm');
  // The wasm backend ships no gradient kernels for convolutions; ours make it train.
  const { registerWasmTrainingKernels } = await import('./tf-kernels/index.js');
  registerWasmTrainingKernels();
  wasmRun = { threads: 1 };
  if (threads > 1) {
    const { registerThreadedWasmBackend } = await import('./tf-kernels/threaded-wasm.js');
    try {
      await registerThreadedWasmBackend(threads);
      wasmRun = { threads };
    } catch (err) {
      // Nothing was changed: the one-thread build still works, only slower.
      wasmRun = { threads: 1, threadedFailure: err instanceof Error ? err.message.split('\n')[0] : String(err) };
    }
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
}

async function loadCpu(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
  // The cpu backend prints a banner on first use; our own backend line already says what to install.
  (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
}

const LOADERS: Record<BackendName, () => Promise<void>> = {
  tensorflow: loadTensorflow,
  wasm: loadWasm,
  cpu: loadCpu,
};

function threadNote(name: BackendName): string {
  if (name !== 'wasm') return '';
  if (wasmRun.threadedFailure) return ` on one thread (its threaded build did not start: ${wasmRun.threadedFailure})`;
  return wasmRun.threads > 1 ? ` with ${wasmRun.threads} threads` : ' on one thread';
}

function reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  if (/Cannot find (package|module)/.test(text)) return 'is not installed';
  return `failed to load (${text.split('\n')[0]})`;
}

/**
 * Selects a backend. `auto` takes the fastest that loads: tfjs-node-gpu, then wasm, then the pure-JS cpu backend.
 * An explicit choice that cannot load is a UserError, and so is a bad setting (never a reason to fall back).
 * Idempotent for the same choice.
 */
export async function selectBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (active && (choice === 'auto' || choice === active.name)) return active;
  if (choice !== 'auto') {
    try {
      await LOADERS[choice]();
    } catch (err) {
      if (err instanceof UserError) throw err;
      const hint = choice === 'tensorflow' ? `; ${GPU_HINT}, or use --backend wasm` : '; use --backend auto';
      throw new UserError(`backend "${choice}" ${reason(err)}${hint}`);
    }
    await tf.ready();
    active = { name: choice, message: `backend: ${choice} (chosen with --backend)${threadNote(choice)}` };
    return active;
  }
  const failures: string[] = [];
  for (const name of ['tensorflow', 'wasm', 'cpu'] as const) {
    try {
      await LOADERS[name]();
      await tf.ready();
    } catch (err) {
      // A setting the user got wrong (MALARIA_WASM_THREADS) is theirs to fix, not a reason to fall back.
      if (err instanceof UserError) throw err;
      failures.push(`${name} ${reason(err)}`);
      continue;
    }
    const why = failures.length ? ` because ${failures.join(', ')}` : '';
    const hint = name === 'tensorflow' ? '' : `; to go faster, ${GPU_HINT}`;
    active = { name, message: `backend: ${name}${threadNote(name)}${why}${hint}` };
    return active;
  }
  throw new UserError(`no TensorFlow.js backend could load: ${failures.join('; ')}`, 1);
}
