// Weight quantization in TensorFlow.js' own manifest format, so that stock tf.loadLayersModel (tfjs-core's
// io.decodeWeights) dequantizes on load with no code of ours: a manifest entry keeps dtype 'float32' and gains
// `quantization: {dtype: 'uint8', min, scale}` (value = min + scale * q) or `{dtype: 'float16'}` (IEEE half floats).
import type { tf } from '../tf.js';
import { UserError } from '../errors.js';

export const QUANTIZATIONS = ['uint8', 'float16', 'none'] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

type WeightSpec = tf.io.WeightsManifestEntry;
type Codec = 'uint8' | 'float16';

const UINT8_MAX = 255;
const FLOAT16_MAX = 65504;

/** Bytes per value of the unquantized dtypes a layers model saves. */
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

export interface Uint8Quantized {
  values: Uint8Array;
  min: number;
  scale: number;
}

/**
 * Affine uint8 quantization of one tensor, as tfjs-converter does it: the range [min, max] is split into 255
 * steps, and when it covers 0 it is shifted ("nudged") so that 0 falls exactly on a step (zero biases and
 * zero-padded kernels stay exactly zero). A constant tensor is stored as q = 0 with min = the value.
 * Every value comes back within scale / 2 of the original.
 */
export function quantizeUint8(data: ArrayLike<number>): Uint8Quantized {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < data.length; i++) {
    lo = Math.min(lo, data[i]);
    hi = Math.max(hi, data[i]);
  }
  const values = new Uint8Array(data.length);
  if (data.length === 0) return { values, min: 0, scale: 1 };
  if (lo === hi) return { values, min: lo, scale: 1 };
  const scale = (hi - lo) / UINT8_MAX;
  let min = lo;
  if (lo <= 0 && hi >= 0) min = -Math.round(-lo / scale) * scale;
  const max = min + UINT8_MAX * scale;
  for (let i = 0; i < data.length; i++) {
    const clipped = Math.min(max, Math.max(min, data[i]));
    // Clamp again after rounding: a Uint8Array would wrap 256 to 0.
    values[i] = Math.min(UINT8_MAX, Math.max(0, Math.round((clipped - min) / scale)));
  }
  return { values, min, scale };
}

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** The IEEE 754 half-precision bits of `value` (rounded to nearest, ties to even; overflow gives infinity). */
export function float16Bits(value: number): number {
  f32[0] = value;
  const bits = f32Bits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // infinity or NaN
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half (or zero): the value is m * 2^-24 with m = full mantissa >> (14 - halfExponent).
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/**
 * Half floats in the platform's byte order, which is how tfjs reads them back (new Uint16Array(buffer));
 * every platform TensorFlow.js runs on is little-endian, as the Python converter writes them.
 */
export function encodeFloat16(data: ArrayLike<number>, name = 'weight'): Uint8Array {
  const halves = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    if (Math.abs(data[i]) > FLOAT16_MAX) {
      throw new UserError(
        `${name} holds ${data[i]}, beyond float16's range (±${FLOAT16_MAX}); use --quantize uint8 or none`,
        1,
      );
    }
    halves[i] = float16Bits(data[i]);
  }
  return new Uint8Array(halves.buffer);
}

/**
 * Which encoding a weight gets. float16: all float32 weights. uint8: kernels (rank >= 2) only; the 1-D weights
 * (batch-norm mean, variance, gamma, beta, biases) go to float16, because one uint8 grid per tensor would erase
 * a small batch-norm variance next to a large one (and with it that channel's scale), while these vectors hold
 * about 1% of the tutorial ResNet's parameters. (quantizeWeights keeps a float16 candidate as float32 when its
 * values exceed the half range.)
 */
export function codecFor(spec: WeightSpec, quantization: Quantization): Codec | undefined {
  if (quantization === 'none' || spec.dtype !== 'float32' || spec.quantization) return undefined;
  if (quantization === 'float16') return 'float16';
  return spec.shape.length >= 2 ? 'uint8' : 'float16';
}

export interface QuantizedWeights {
  /** Manifest entries in the order of `data`, each with its `quantization` field when quantized. */
  specs: WeightSpec[];
  data: Uint8Array;
  /** Weights (tensors) stored per encoding. */
  counts: { uint8: number; float16: number; float32: number; other: number };
  /** Weights meant for float16 but kept as float32 because they hold values beyond ±65504 (a batch-norm variance can). */
  beyondFloat16: string[];
  /**
   * Largest change of a value, relative to the largest magnitude in its tensor (so a batch-norm variance of 5000
   * and a kernel of 0.01 compare): at most 1/255 for uint8 (half a step of a range at most twice the largest
   * magnitude), 2^-11 for float16 (normal values); 0 for none.
   */
  maxRelativeError: number;
}

function valuesCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

/** Re-encodes unquantized layers-model weights (specs + concatenated data, as model.save hands them over). */
export function quantizeWeights(
  specs: readonly WeightSpec[],
  data: ArrayBuffer,
  quantization: Quantization,
): QuantizedWeights {
  const chunks: Uint8Array[] = [];
  const outSpecs: WeightSpec[] = [];
  const counts = { uint8: 0, float16: 0, float32: 0, other: 0 };
  const beyondFloat16: string[] = [];
  let maxRelativeError = 0;
  const noteError = (original: Float32Array, stored: (i: number) => number): void => {
    let largest = 0;
    let worst = 0;
    for (let i = 0; i < original.length; i++) {
      largest = Math.max(largest, Math.abs(original[i]));
      worst = Math.max(worst, Math.abs(stored(i) - original[i]));
    }
    if (largest > 0) maxRelativeError = Math.max(maxRelativeError, worst / largest);
  };
  let offset = 0;
  for (const spec of specs) {
    if (spec.quantization)
      throw new Error(`weight ${spec.name} is already quantized; quantize from unquantized weights`);
    const bytesPerValue = DTYPE_BYTES[spec.dtype];
    if (bytesPerValue === undefined)
      throw new Error(`weight ${spec.name} has dtype ${spec.dtype}, which a layers model does not save`);
    const byteLength = valuesCount(spec.shape) * bytesPerValue;
    if (offset + byteLength > data.byteLength) throw new Error(`the weight data ends before weight ${spec.name}`);
    const raw = data.slice(offset, offset + byteLength);
    offset += byteLength;
    let codec = codecFor(spec, quantization);
    if (codec === 'float16' && new Float32Array(raw).some((v) => Math.abs(v) > FLOAT16_MAX)) {
      // Exact float32 for a small tensor beats refusing the export or writing infinity.
      beyondFloat16.push(spec.name);
      codec = undefined;
    }
    if (codec === undefined) {
      chunks.push(new Uint8Array(raw));
      outSpecs.push({ ...spec });
      if (spec.dtype === 'float32') counts.float32++;
      else counts.other++;
      continue;
    }
    const values = new Float32Array(raw);
    for (const v of values) {
      if (!Number.isFinite(v))
        throw new UserError(`weight ${spec.name} holds ${v}: the model diverged; train it again`, 1);
    }
    if (codec === 'uint8') {
      const { values: q, min, scale } = quantizeUint8(values);
      noteError(values, (i) => Math.fround(min + scale * q[i]));
      chunks.push(q);
      outSpecs.push({ ...spec, quantization: { dtype: 'uint8', min, scale } });
      counts.uint8++;
    } else {
      const halves = encodeFloat16(values, `weight ${spec.name}`);
      const bits = new Uint16Array(halves.buffer, halves.byteOffset, values.length);
      noteError(values, (i) => float16Value(bits[i]));
      chunks.push(halves);
      outSpecs.push({ ...spec, quantization: { dtype: 'float16' } });
      counts.float16++;
    }
  }
  if (offset !== data.byteLength)
    throw new Error(`the weight data holds ${data.byteLength - offset} bytes beyond its manifest`);
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return { specs: outSpecs, data: out, counts, beyondFloat16, maxRelativeError };
}

/** The number a half float's bits stand for. */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
