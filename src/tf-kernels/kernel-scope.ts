// Runs a backend's own kernels directly from inside another kernel, and frees the intermediates.
// Going around the engine keeps the composite off the gradient tape and avoids per-op engine overhead.
import { tf } from '../tf.js';
import { asWasmBackend } from './wasm-heap.js';

type KernelInputs = Record<string, tf.TensorInfo> | tf.TensorInfo[];

export class KernelScope {
  private readonly made: tf.TensorInfo[] = [];

  constructor(
    readonly backend: tf.KernelBackend,
    readonly backendName: string,
  ) {}

  /** Runs `kernelName` of this backend; the output is freed by `finish` unless it is the result. */
  run(kernelName: string, inputs: KernelInputs, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
    const config = tf.getKernel(kernelName, this.backendName);
    if (!config) throw new Error(`kernel '${kernelName}' is not registered for backend '${this.backendName}'`);
    const out = config.kernelFunc({
      inputs: inputs as tf.NamedTensorInfoMap,
      backend: this.backend,
      attrs,
    });
    if (Array.isArray(out)) throw new Error(`kernel '${kernelName}' returned several outputs`);
    this.made.push(out);
    return out;
  }

  /** A new uninitialised tensor on the wasm heap, to be filled by hand. */
  alloc(shape: number[], dtype: tf.DataType = 'float32'): tf.TensorInfo {
    const out = asWasmBackend(this.backend).makeOutput(shape, dtype);
    this.made.push(out);
    return out;
  }

  /** Frees an intermediate early, to lower peak memory. */
  release(t: tf.TensorInfo): void {
    const index = this.made.indexOf(t);
    if (index < 0) throw new Error('release: not made in this scope');
    this.made.splice(index, 1);
    this.backend.disposeData(t.dataId);
  }

  reshape(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  zeros(shape: number[]): tf.TensorInfo {
    return this.run('Fill', {}, { shape, value: 0, dtype: 'float32' });
  }

  /** Frees every intermediate except `result`, which the caller hands to the engine. */
  finish(result: tf.TensorInfo): tf.TensorInfo {
    for (const t of this.made) if (t !== result) this.backend.disposeData(t.dataId);
    this.made.length = 0;
    return result;
  }

  /** Hands tensors over to the caller: `finish`/`abandon` no longer free them. */
  keep(...tensors: tf.TensorInfo[]): void {
    for (const t of tensors) {
      const index = this.made.indexOf(t);
      if (index >= 0) this.made.splice(index, 1);
    }
  }

  /** Frees every intermediate (after an error, or once the results are kept). */
  abandon(): void {
    for (const t of this.made) this.backend.disposeData(t.dataId);
    this.made.length = 0;
  }
}

/** Runs `body` in a fresh scope and returns its result with all other intermediates freed. */
export function withKernelScope(
  backend: unknown,
  backendName: string,
  body: (scope: KernelScope) => tf.TensorInfo,
): tf.TensorInfo {
  const scope = new KernelScope(backend as tf.KernelBackend, backendName);
  try {
    return scope.finish(body(scope));
  } catch (err) {
    scope.abandon();
    throw err;
  }
}
