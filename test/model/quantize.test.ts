import seedrandom from 'seedrandom';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { UserError } from '../../src/errors.js';
import {
  codecFor,
  encodeFloat16,
  float16Bits,
  float16Value,
  quantizeUint8,
  quantizeWeights,
} from '../../src/model/quantize.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

/** Dequantizes with tfjs' own decoder (the one tf.loadLayersModel uses), not with ours. */
function tfjsDecode(bytes: Uint8Array, spec: tf.io.WeightsManifestEntry): Float32Array {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const decoded = tf.io.decodeWeights(buffer, [spec]);
  const values = decoded[spec.name].dataSync() as Float32Array;
  tf.dispose(decoded);
  return values;
}

function randomValues(n: number, seed: string, lo: number, hi: number): Float32Array {
  const random = seedrandom(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * random());
}

describe('float16Bits', () => {
  it('gives the IEEE half-precision bit patterns of known values', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // largest half
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [Number.POSITIVE_INFINITY, 0x7c00],
      [65536, 0x7c00], // overflow
    ];
    for (const [value, bits] of cases) expect(float16Bits(value), String(value)).toBe(bits);
  });

  it('rounds to nearest with ties to even, in normal and subnormal range', () => {
    expect(float16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and 1 + 2^-10: even is 1
    expect(float16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway between 0x3c01 and 0x3c02: even is 0x3c02
    expect(float16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above halfway
    expect(float16Bits(2 ** -25)).toBe(0x0000); // halfway between 0 and the smallest subnormal
    expect(float16Bits(3 * 2 ** -25)).toBe(0x0002); // halfway between 1 and 2 subnormal steps
    expect(float16Bits(2 ** -26)).toBe(0x0000);
    expect(float16Bits(65519)).toBe(0x7bff); // below the rounding point to infinity
  });

  it('float16Value inverts it on every finite half', () => {
    const mismatches: number[] = [];
    let checked = 0;
    for (let bits = 0; bits < 0x10000; bits++) {
      if (((bits >>> 10) & 0x1f) === 0x1f) continue; // infinities and NaNs
      checked++;
      if (float16Bits(float16Value(bits)) !== bits) mismatches.push(bits);
    }
    expect(checked).toBe(0x10000 - 2 * 1024);
    expect(mismatches).toEqual([]);
    expect(Object.is(float16Value(0x8000), -0)).toBe(true);
  });
});

describe('encodeFloat16', () => {
  it('is decoded by tfjs to the nearest half of every value', () => {
    const values = Float32Array.from([...randomValues(500, 'f16', -8, 8), 1e-6, -3e-5, 60000, 0]);
    const bytes = encodeFloat16(values);
    expect(bytes.byteLength).toBe(2 * values.length);
    const decoded = tfjsDecode(bytes, {
      name: 'w',
      shape: [values.length],
      dtype: 'float32',
      quantization: { dtype: 'float16' },
    });
    values.forEach((v, i) => {
      expect(decoded[i]).toBe(Math.fround(float16Value(float16Bits(v))));
      // Half precision keeps 11 significant bits: relative error <= 2^-11, absolute 2^-25 among subnormals.
      expect(Math.abs(decoded[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
    });
  });

  it('refuses a value beyond the half range instead of writing infinity', () => {
    expect(() => encodeFloat16(Float32Array.from([1, -70000]), 'weight conv/kernel')).toThrow(
      /conv\/kernel holds -70000, beyond float16/,
    );
  });
});

describe('quantizeUint8', () => {
  it('nudges a range that covers 0 so that 0 is stored exactly (hand-computed)', () => {
    // Range [-1, 2]: scale 3/255; zero sits at (0 - -1) / scale = 85 steps, already whole, so min stays -1.
    const { values, min, scale } = quantizeUint8(Float32Array.from([-1, 0, 0.6, 2]));
    expect(scale).toBeCloseTo(3 / 255, 15);
    expect(min).toBeCloseTo(-1, 15);
    expect(Array.from(values)).toEqual([0, 85, 136, 255]);
  });

  it('moves min when 0 would fall between two steps', () => {
    // Range [-0.1, 1]: zero at 0.1 / (1.1/255) = 23.18 steps -> 23, so min becomes -23 * scale.
    // (-0.1 as float32 is off by 1.5e-9, hence 9 digits.)
    const { values, min, scale } = quantizeUint8(Float32Array.from([-0.1, 0, 1]));
    expect(scale).toBeCloseTo(1.1 / 255, 9);
    expect(min).toBeCloseTo((-23 * 1.1) / 255, 9);
    expect(values[1]).toBe(23);
    expect(min + scale * values[1]).toBeCloseTo(0, 15);
  });

  it('does not nudge a range away from 0, and stores a constant tensor as its value', () => {
    const positive = quantizeUint8(Float32Array.from([1, 1.5, 2]));
    expect(positive.min).toBe(1);
    expect(Array.from(positive.values)).toEqual([0, 128, 255]); // 0.5 / (1/255) = 127.5 -> 128
    const constant = quantizeUint8(Float32Array.from([0.7, 0.7, 0.7]));
    expect(Array.from(constant.values)).toEqual([0, 0, 0]);
    expect(constant.min).toBe(Math.fround(0.7));
  });

  it('comes back through tfjs within scale / 2 of every value', () => {
    for (const [lo, hi] of [
      [-0.3, 0.2],
      [0.01, 3],
      [-5, -1],
    ]) {
      const values = randomValues(1000, `u8 ${lo}`, lo, hi);
      const { values: q, min, scale } = quantizeUint8(values);
      const decoded = tfjsDecode(q, {
        name: 'w',
        shape: [values.length],
        dtype: 'float32',
        quantization: { dtype: 'uint8', min, scale },
      });
      let worst = 0;
      values.forEach((v, i) => (worst = Math.max(worst, Math.abs(decoded[i] - v))));
      expect(worst).toBeLessThanOrEqual(scale / 2 + 1e-6);
      expect(worst).toBeGreaterThan(scale / 4); // 1000 random values do land away from the grid
    }
  });
});

describe('quantizeWeights', () => {
  const kernel = randomValues(24, 'kernel', -0.5, 0.5);
  // A batch-norm variance next to a large one: one uint8 grid would turn 0.002 into 0.
  const variance = Float32Array.from([0.002, 0.5, 3]);
  const specs: tf.io.WeightsManifestEntry[] = [
    { name: 'conv/kernel', shape: [2, 2, 2, 3], dtype: 'float32' },
    { name: 'bn/moving_variance', shape: [3], dtype: 'float32' },
  ];
  const data = new Float32Array([...kernel, ...variance]).buffer;

  it('uint8: kernels as uint8, vectors as float16, in manifest order and sizes', () => {
    expect(codecFor(specs[0], 'uint8')).toBe('uint8');
    expect(codecFor(specs[1], 'uint8')).toBe('float16');
    const result = quantizeWeights(specs, data, 'uint8');
    expect(result.data.byteLength).toBe(24 + 3 * 2);
    expect(result.counts).toEqual({ uint8: 1, float16: 1, float32: 0, other: 0 });
    expect(result.specs[0].quantization).toMatchObject({ dtype: 'uint8' });
    expect(result.specs[1].quantization).toEqual({ dtype: 'float16' });
    expect(result.specs.map((s) => [s.name, s.dtype, s.shape])).toEqual(specs.map((s) => [s.name, s.dtype, s.shape]));
    const buffer = result.data.buffer.slice(0) as ArrayBuffer;
    const decoded = tf.io.decodeWeights(buffer, result.specs);
    const backVariance = decoded['bn/moving_variance'].dataSync();
    tf.dispose(decoded);
    backVariance.forEach((v, i) => expect(Math.abs(v - variance[i]) / variance[i]).toBeLessThan(2 ** -10));
    const { scale } = result.specs[0].quantization as { scale: number };
    const largestKernel = Math.max(...kernel.map(Math.abs));
    // The kernel's worst error is at most half a step; the variances' at most 2^-11 of 3.
    expect(result.maxRelativeError).toBeLessThanOrEqual(Math.max((scale / 2 + 1e-7) / largestKernel, 2 ** -11));
    expect(result.maxRelativeError).toBeGreaterThan(0);
  });

  it('float16 halves every weight; none copies the bytes', () => {
    const half = quantizeWeights(specs, data, 'float16');
    expect(half.data.byteLength).toBe(27 * 2);
    expect(half.counts.float16).toBe(2);
    const none = quantizeWeights(specs, data, 'none');
    expect(Array.from(none.data)).toEqual(Array.from(new Uint8Array(data)));
    expect(none.specs.every((s) => s.quantization === undefined)).toBe(true);
    expect(none.maxRelativeError).toBe(0);
    expect(half.maxRelativeError).toBeGreaterThan(0);
    expect(half.maxRelativeError).toBeLessThanOrEqual(2 ** -11);
  });

  it('keeps a weight beyond the float16 range as exact float32, and says which', () => {
    // A badly trained net's batch-norm variance reached 118749 on the bundled sample.
    const huge = Float32Array.from([0.5, 118749, 3]);
    const hugeData = new Float32Array([...kernel, ...huge]).buffer;
    for (const mode of ['uint8', 'float16'] as const) {
      const result = quantizeWeights(specs, hugeData, mode);
      expect(result.beyondFloat16).toEqual(['bn/moving_variance']);
      expect(result.specs[1].quantization).toBeUndefined();
      expect(result.counts.float32).toBe(1);
      expect(result.data.byteLength).toBe((mode === 'uint8' ? 24 : 48) + 12);
      const decoded = tf.io.decodeWeights(result.data.buffer.slice(0) as ArrayBuffer, result.specs);
      expect(Array.from(decoded['bn/moving_variance'].dataSync())).toEqual(Array.from(huge));
      tf.dispose(decoded);
    }
    expect(quantizeWeights(specs, data, 'float16').beyondFloat16).toEqual([]);
  });

  it('refuses NaN weights with a one-line error, and a manifest that does not match the data', () => {
    const broken = new Float32Array([...kernel, Number.NaN, 1, 2]).buffer;
    expect(() => quantizeWeights(specs, broken, 'uint8')).toThrow(UserError);
    expect(() => quantizeWeights(specs, broken, 'uint8')).toThrow(/bn\/moving_variance holds NaN/);
    expect(() => quantizeWeights(specs, data.slice(0, 40), 'float16')).toThrow(/ends before weight conv\/kernel/);
    expect(() => quantizeWeights(specs.slice(0, 1), data, 'float16')).toThrow(/12 bytes beyond/);
  });
});
