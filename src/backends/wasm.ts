// The wasm backend: XNNPACK in WebAssembly, with this project's training kernels, threaded where it can start.
import { UserError } from '../errors.js';
import { tf } from '../tf.js';

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
export function wasmThreads(env: NodeJS.ProcessEnv, cores: number): number {
  const limit = Math.max(1, Math.min(cores, MAX_WASM_THREADS));
  const raw = env.MALARIA_WASM_THREADS;
  if (raw === undefined || raw === '') return limit;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new UserError(`MALARIA_WASM_THREADS must be a whole number of threads, 1 or more, got "${raw}"`);
  }
  return Math.min(value, limit);
}

/**
 * Loads the wasm backend with `threads` threads (checked by wasmThreads beforehand) and makes it active. Returns
 * the threads it runs and what the backend line says about them: " with 2 threads", " on one thread", or why not
 * threaded.
 */
export async function loadWasm(threads: number): Promise<{ threads: number; note: string }> {
  await import('@tensorflow/tfjs-backend-wasm');
  // The wasm backend ships no gradient kernels for convolutions; ours make it train.
  const { registerWasmTrainingKernels } = await import('../tf-kernels/index.js');
  registerWasmTrainingKernels();
  let note = ' on one thread';
  let running = 1;
  if (threads > 1) {
    const { registerThreadedWasmBackend } = await import('../tf-kernels/threaded-wasm.js');
    try {
      await registerThreadedWasmBackend(threads);
      note = ` with ${threads} threads`;
      running = threads;
    } catch (err) {
      // Nothing was changed: the one-thread build still works, only slower.
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      note = ` on one thread (its threaded build did not start: ${why})`;
    }
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
  return { threads: running, note };
}
