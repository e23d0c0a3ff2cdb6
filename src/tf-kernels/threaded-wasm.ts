// The multi-threaded (pthreads + SIMD) build of the wasm backend under Node (src/backends/select.ts starts it on 2+ cores).
//
// tfjs-backend-wasm never picks it under Node (WASM_HAS_MULTITHREAD_SUPPORT is false there), and forcing it fails
// because the pthread worker script is handed over as a `blob:` URL, which Node's Worker rejects. Here the
// emscripten factory is started by hand with the worker script written to a private temporary file (deleted once
// the workers have loaded it); the factory's own
// Node support (worker_threads, importScripts of its file) does the rest. The C++ side also caps the pool at
// hardwareConcurrency / 2 (it assumes two hardware threads per core), which is 1 on a 2-core machine; os.cpus()
// reports twice the requested thread count while the module starts so that the cap is the caller's choice
// (src/backends/wasm.ts already caps it at the cores).
//
// Measured on 2 cores: 2 threads give ~1.5x training and ~1.9x inference on idle cores; with another process
// keeping one core busy, ~0.9x training and ~1.2x inference.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../tf.js';

const require = createRequire(import.meta.url);
const PACKAGE = '@tensorflow/tfjs-backend-wasm';
const WASM_PRIORITY = 2;

interface EmscriptenModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: number[]) => number;
  tfjs?: Record<string, (...args: number[]) => number>;
  /** Emscripten's pthread bookkeeping; each running thread is a Node Worker. */
  PThread: { runningWorkers: { unref(): void }[]; terminateAllThreads(): void };
}

type Factory = (config: { locateFile: (file: string, prefix: string) => string }) => Promise<EmscriptenModule>;

/**
 * Writes the pthread worker script (tfjs ships it as a string meant for a Blob) into a new private folder (mode
 * 0700: the script runs as code in this process), and returns the folder and the file.
 */
function writeWorkerScript(): { folder: string; file: string } {
  const { wasmWorkerContents } = require(`${PACKAGE}/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`) as {
    wasmWorkerContents: string;
  };
  const folder = mkdtempSync(path.join(os.tmpdir(), 'malaria-tfjs-wasm-'));
  const file = path.join(folder, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  // As tfjs does for its Blob: the template literal turned escaped newlines in string literals into real ones.
  writeFileSync(file, wasmWorkerContents.replace(/\n/g, '\\n'));
  return { folder, file };
}

async function startThreadedModule(threads: number): Promise<EmscriptenModule> {
  const factory = require(`${PACKAGE}/wasm-out/tfjs-backend-wasm-threaded-simd.js`) as Factory;
  const workerScript = writeWorkerScript();
  const cpus = os.cpus;
  os.cpus = () => {
    const real = cpus();
    return Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]);
  };
  try {
    const module = await factory({
      locateFile: (file, prefix) => (file.endsWith('.worker.js') ? workerScript.file : prefix + file),
    });
    // The bindings BackendWasm expects (as tfjs-backend-wasm's init() makes them).
    module.tfjs = {
      init: module.cwrap('init', null, []),
      initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: module.cwrap('get_threads_count', 'number', []),
      registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: module.cwrap('dispose_data', null, ['number']),
      dispose: module.cwrap('dispose', null, []),
    };
    return module;
  } finally {
    os.cpus = cpus;
    // The factory resolves once its pool of workers has loaded the script; the file is not read again.
    rmSync(workerScript.folder, { recursive: true, force: true });
  }
}

export interface ThreadedWasmOptions {
  /** Runs once the backend has started its threads, before it is registered; a throw there is a failure after start. */
  afterStart?: () => void;
}

/**
 * Makes the 'wasm' backend the threaded build with `threads` threads, started here so that a failure (no writable
 * temp folder, no worker threads...) throws before anything changes: the caller can keep the one-thread build.
 * A failure after the workers started terminates them, so they never keep the process alive. Call before the
 * backend is first used; kernels registered for 'wasm' (including the training kernels) apply unchanged.
 */
export async function registerThreadedWasmBackend(threads: number, options: ThreadedWasmOptions = {}): Promise<void> {
  // The same module instance as src/backends/wasm.ts imports (a require() here can resolve to another copy under vite).
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  type ModuleArgument = ConstructorParameters<typeof wasm.BackendWasm>[0];
  const module = await startThreadedModule(threads);
  let backend: InstanceType<typeof wasm.BackendWasm>;
  try {
    wasm.setThreadsCount(Math.max(1, threads));
    try {
      backend = new wasm.BackendWasm(module as unknown as ModuleArgument); // starts the thread pool
    } finally {
      wasm.setThreadsCount(-1); // the one-thread build's default, should it be started later
    }
    options.afterStart?.();
  } catch (err) {
    // Running pthreads hold their workers referenced: left alone they would keep the process from exiting.
    module.PThread.terminateAllThreads();
    throw err;
  }
  // The pool's threads wait for work forever; unreferenced, they no longer keep Node from exiting when the
  // program is done (Node ends them at exit), so CLIs and test workers exit as with the one-thread build.
  for (const worker of module.PThread.runningWorkers) worker.unref();
  if (tf.findBackendFactory('wasm')) tf.removeBackend('wasm');
  tf.registerBackend('wasm', () => backend, WASM_PRIORITY);
}
