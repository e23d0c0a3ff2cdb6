// The convolution of inference (src/model/fold-batch-norm.ts) with what follows it in one pass: conv2d + bias
// (+ a residual input), then optionally the next batch norm's per-channel multiply-add (keeping the sum before it
// as a second output when a later residual connection reads it), then the ReLU. On the one-thread wasm backend it
// runs our own SIMD loop (conv-wasm.ts), faster than XNNPACK's; elsewhere, and on the threaded wasm build (where
// XNNPACK splits the work over threads and ours would not), tfjs' fused ops. Training keeps tfjs' FusedConv2D.
import { tf } from '../tf.js';
import { convGeometry } from './conv-geometry.js';
import { CONV_AFFINE, CONV_INSIDE, CONV_KEEP_RAW, CONV_RELU, CONV_RESIDUAL, convFunctionFor } from './conv-wasm.js';
import { KernelScope } from './kernel-scope.js';
import { asWasmBackend, byteOffset, floatIndex, heapF32 } from './wasm-heap.js';

export const INFERENCE_CONV2D = 'MalariaInferenceConv2D';

export type InferenceActivation = 'linear' | 'relu';

interface InferenceConvInputs {
  x: tf.TensorInfo;
  filter: tf.TensorInfo;
  bias?: tf.TensorInfo;
  residual?: tf.TensorInfo;
  scale?: tf.TensorInfo;
  shift?: tf.TensorInfo;
}

interface InferenceConvAttrs {
  strides: [number, number];
  pad: 'same' | 'valid';
  activation: InferenceActivation;
  /** Also return the sum before scale and shift (first of two outputs). */
  keepRaw: boolean;
}

type Shape4 = [number, number, number, number];

/** What the emscripten module of the wasm backend exposes beyond the heap: its memory and its thread count. */
interface WasmModuleInternals {
  wasm: {
    asm?: { memory?: WebAssembly.Memory };
    wasmMemory?: WebAssembly.Memory;
    tfjs?: { getThreadsCount?: () => number };
  };
}

/** The wasm backend's memory when it runs one thread (ours then beats XNNPACK); undefined otherwise. */
function oneThreadMemory(backend: unknown): WebAssembly.Memory | undefined {
  const { wasm } = backend as WasmModuleInternals;
  if ((wasm.tfjs?.getThreadsCount?.() ?? 1) !== 1) return undefined;
  return wasm.wasmMemory ?? wasm.asm?.memory;
}

/** The same with wasm's own kernels: XNNPACK's fused convolution, an add, a 1x1 depthwise convolution, a ReLU. */
function xnnpackConv(
  scope: KernelScope,
  inputs: InferenceConvInputs,
  attrs: InferenceConvAttrs,
): tf.TensorInfo | tf.TensorInfo[] {
  const { x, filter, bias, residual, scale, shift } = inputs;
  const affine = scale && shift;
  const activation = residual || affine ? 'linear' : attrs.activation;
  const convAttrs = { strides: attrs.strides, pad: attrs.pad, dataFormat: 'NHWC', dilations: [1, 1], activation };
  let y = scope.run('FusedConv2D', bias ? { x, filter, bias } : { x, filter }, convAttrs);
  if (residual) y = scope.run('Add', { a: y, b: residual });
  const raw = y;
  if (affine) {
    const channels = [1, 1, scale.shape[0], 1];
    const multiplier = scope.reshape(scale, channels);
    const depthwise = {
      strides: [1, 1],
      pad: 'valid',
      dataFormat: 'NHWC',
      dilations: [1, 1],
      activation: attrs.activation,
    };
    y = scope.run('FusedDepthwiseConv2D', { x: y, filter: multiplier, bias: shift }, depthwise);
  } else if (residual && attrs.activation === 'relu') {
    y = scope.run('Relu', { x: y });
  }
  return attrs.keepRaw ? [raw, y] : y;
}

export const inferenceConvKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const convInputs = inputs as unknown as InferenceConvInputs;
  const convAttrs = attrs as unknown as InferenceConvAttrs;
  const { x, filter, bias, residual, scale, shift } = convInputs;
  const scope = new KernelScope(backend as tf.KernelBackend, 'wasm');
  try {
    const memory = oneThreadMemory(backend);
    const outChannels = filter.shape[3];
    if (!memory || x.dtype !== 'float32' || filter.dtype !== 'float32' || outChannels % 4 !== 0) {
      const result = xnnpackConv(scope, convInputs, convAttrs);
      const results = Array.isArray(result) ? result : [result];
      scope.keep(...results);
      scope.abandon();
      return result;
    }
    const g = convGeometry(x.shape as Shape4, filter.shape as Shape4, convAttrs);
    const wasm = asWasmBackend(scope.backend);
    const shape = [g.batch, g.outHeight, g.outWidth, outChannels];
    const raw = convAttrs.keepRaw ? scope.alloc(shape) : undefined;
    const out = scope.alloc(shape);
    // Zeros for the taps that fall in the padding (one window row of them), and the bias when there is none.
    const zeros = scope.alloc([Math.max(g.filterWidth * g.inChannels, outChannels)]);
    const heap = heapF32(wasm);
    const zerosStart = floatIndex(wasm, zeros);
    heap.fill(0, zerosStart, zerosStart + zeros.shape[0]);
    const padded =
      g.padTop > 0 ||
      g.padLeft > 0 ||
      (g.outHeight - 1) * g.strideHeight + g.filterHeight > g.inHeight ||
      (g.outWidth - 1) * g.strideWidth + g.filterWidth > g.inWidth;
    const flags =
      (convAttrs.activation === 'relu' ? CONV_RELU : 0) |
      (residual ? CONV_RESIDUAL : 0) |
      (padded ? 0 : CONV_INSIDE) |
      (scale && shift ? CONV_AFFINE : 0) |
      (raw ? CONV_KEEP_RAW : 0);
    const at = (t: tf.TensorInfo | undefined) => (t ? byteOffset(wasm, t) : 0);
    convFunctionFor(memory)(
      at(x),
      at(filter),
      at(bias ?? zeros),
      at(residual),
      at(out),
      at(zeros),
      0,
      g.batch * g.outHeight * g.outWidth,
      g.inHeight,
      g.inWidth,
      g.inChannels,
      g.outHeight,
      g.outWidth,
      outChannels,
      g.filterHeight,
      g.filterWidth,
      g.strideHeight,
      g.strideWidth,
      g.padTop,
      g.padLeft,
      flags,
      at(scale),
      at(shift),
      at(raw),
    );
    const results = raw ? [raw, out] : [out];
    scope.keep(...results);
    scope.abandon();
    return raw ? results : out;
  } catch (err) {
    scope.abandon();
    throw err;
  }
};

export interface InferenceConvArgs {
  x: tf.Tensor4D;
  filter: tf.Tensor4D;
  bias?: tf.Tensor1D;
  /** Added to the convolution's output (same shape): a residual connection. */
  residual?: tf.Tensor4D;
  /** A per-channel multiply-add after the residual (an inference-mode batch norm): y * scale + shift. */
  affine?: { scale: tf.Tensor1D; shift: tf.Tensor1D };
  strides: [number, number];
  pad: 'same' | 'valid';
  /** Applied last. */
  activation: InferenceActivation;
}

/**
 * act(affine(conv2d(x, filter) + bias + residual)), NHWC, for inference only (no gradient). With `keepRaw`, also
 * the sum before the affine: [raw, output].
 */
export function inferenceConv2d(args: InferenceConvArgs): tf.Tensor4D;
export function inferenceConv2d(args: InferenceConvArgs, keepRaw: true): [tf.Tensor4D, tf.Tensor4D];
export function inferenceConv2d(args: InferenceConvArgs, keepRaw = false): tf.Tensor4D | [tf.Tensor4D, tf.Tensor4D] {
  const { x, filter, bias, residual, affine, strides, pad, activation } = args;
  if (keepRaw && !affine) throw new Error('inferenceConv2d: keepRaw needs an affine');
  if (tf.getBackend() === 'wasm' && tf.getKernel(INFERENCE_CONV2D, 'wasm')) {
    const inputs: tf.NamedTensorMap = { x, filter };
    if (bias) inputs.bias = bias;
    if (residual) inputs.residual = residual;
    if (affine) Object.assign(inputs, affine);
    const attrs = { strides, pad, activation, keepRaw };
    const out = tf.engine().runKernel(INFERENCE_CONV2D, inputs, attrs as unknown as tf.NamedAttrMap);
    return out as tf.Tensor4D | [tf.Tensor4D, tf.Tensor4D];
  }
  return tf.tidy(() => {
    const plain = !residual && !affine;
    let raw: tf.Tensor4D = tf.fused.conv2d({
      x,
      filter,
      strides,
      pad,
      bias,
      activation: plain ? activation : 'linear',
    });
    if (residual) raw = tf.add(raw, residual);
    let y = affine ? tf.add(tf.mul(raw, affine.scale), affine.shift) : raw;
    if (!plain && activation === 'relu') y = tf.relu(y);
    return keepRaw ? [raw, y] : y;
  }) as tf.Tensor4D | [tf.Tensor4D, tf.Tensor4D];
}
