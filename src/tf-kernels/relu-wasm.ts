// ReLU and its gradient on wasm as SIMD loops of our own, one pass each on one thread. The gradient was three
// kernels (Step, Cast, Multiply); XNNPACK's threaded Relu waits on its second thread, which costs little on idle
// cores (4.0 ms a laptop-preset step against our 5.4) and much when the other core is busy (28 against 5.8).
// BENCHMARKS.md, issue 26.
import { tf } from '../tf.js';
import { withKernelScope } from './kernel-scope.js';
import { type Code, encodeModule, I32, op } from './wasm-binary.js';
import { asWasmBackend, byteOffset, heapMemory, isShared } from './wasm-heap.js';

export const RELU_GRAD = 'WasmReluGrad';

/** Addresses in bytes; `vectors` groups of 4 floats (at least 1). relu: out = max(x, 0); grad: out = y > 0 ? dy : 0. */
interface ReluFunctions {
  relu(x: number, vectors: number, out: number): void;
  reluGrad(dy: number, y: number, vectors: number, out: number): void;
}

const get = op.localGet;
const set = op.localSet;
const zero: Code = [...op.i32Const(0), ...op.i32x4Splat];

/** for each vector: out = value (built from the vector's byte offset in local AT), then AT += 16. */
function loop(params: number, vectorsParam: number, outParam: number, value: Code): Code {
  const [AT, LEFT] = [params, params + 1];
  return [
    ...op.i32Const(0),
    ...set(AT),
    ...get(vectorsParam),
    ...set(LEFT),
    ...op.loop,
    ...get(outParam),
    ...get(AT),
    ...op.i32Add,
    ...value,
    ...op.v128Store(0),
    ...get(AT),
    ...op.i32Const(16),
    ...op.i32Add,
    ...set(AT),
    ...get(LEFT),
    ...op.i32Const(1),
    ...op.i32Sub,
    ...op.localTee(LEFT),
    ...op.brIf(0),
    ...op.end,
  ];
}

const load = (base: number, at: number): Code => [...get(base), ...get(at), ...op.i32Add, ...op.v128Load(0)];

export function reluModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const relu = loop(3, 1, 2, [...load(0, 3), ...zero, ...op.f32x4Max]);
  const grad = loop(4, 2, 3, [...load(0, 4), ...load(1, 4), ...zero, ...op.f32x4Gt, ...op.v128And]);
  return encodeModule(
    [
      { name: 'relu', params: [I32, I32, I32], locals: [[2, I32]], body: relu },
      { name: 'reluGrad', params: [I32, I32, I32, I32], locals: [[2, I32]], body: grad },
    ],
    sharedMemory,
  );
}

const instances = new WeakMap<WebAssembly.Memory, ReluFunctions>();

/** The functions on this backend's heap, or undefined where its memory is hidden or WebAssembly has no SIMD. */
function reluFunctions(backend: unknown): ReluFunctions | undefined {
  const memory = heapMemory(backend);
  if (!memory) return undefined;
  let functions = instances.get(memory);
  if (!functions) {
    const bytes = reluModule(isShared(memory));
    if (!WebAssembly.validate(bytes)) return undefined;
    functions = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } })
      .exports as unknown as ReluFunctions;
    instances.set(memory, functions);
  }
  return functions;
}

const fits = (t: tf.TensorInfo) => t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) % 4 === 0;

/** Relu on wasm: ours for float32 of a multiple of 4 values, wasm's own otherwise. */
export function makeReluKernel(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const size = tf.util.sizeFromShape(x.shape);
    const simd = size > 0 && fits(x) ? reluFunctions(args.backend) : undefined;
    if (!simd) {
      if (!fallback) throw new Error('Relu: unsupported input on wasm');
      return fallback(args);
    }
    return withKernelScope(args.backend, 'wasm', (scope) => {
      const wasm = asWasmBackend(scope.backend);
      const out = scope.alloc(x.shape.slice());
      simd.relu(byteOffset(wasm, x), size / 4, byteOffset(wasm, out));
      return out;
    });
  };
}

/** dy where y (a ReLU's output) is positive, else 0: inputs dy and y of one shape, float32, a multiple of 4 values. */
export const reluGradKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const { dy, y } = inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
  const simd = reluFunctions(backend);
  if (!simd) throw new Error(`${RELU_GRAD}: WebAssembly SIMD is missing`);
  return withKernelScope(backend, 'wasm', (scope) => {
    const wasm = asWasmBackend(scope.backend);
    const out = scope.alloc(dy.shape.slice());
    simd.reluGrad(
      byteOffset(wasm, dy),
      byteOffset(wasm, y),
      tf.util.sizeFromShape(dy.shape) / 4,
      byteOffset(wasm, out),
    );
    return out;
  });
};

/** The gradient of a ReLU from its output: our one pass on wasm where it fits, else tfjs' dy * step(y). */
export function reluGradient(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const ours =
    tf.getBackend() === 'wasm' &&
    tf.getKernel(RELU_GRAD, 'wasm') !== undefined &&
    dy.size > 0 &&
    tf.util.arraysEqual(dy.shape, y.shape) &&
    fits(dy) &&
    fits(y) &&
    reluFunctions(tf.backend()) !== undefined;
  if (ours) return tf.engine().runKernel(RELU_GRAD, { dy, y }) as tf.Tensor;
  return tf.mul(dy, tf.cast(tf.step(y), 'float32'));
}
