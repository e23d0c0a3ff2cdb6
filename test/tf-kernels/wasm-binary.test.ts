// The WebAssembly encoder: LEB128 numbers as the spec's examples, and a module with SIMD that validates and runs
// on an imported memory, shared (the threaded build's) or not.
import { describe, expect, it } from 'vitest';
import { encodeModule, I32, op, sleb, uleb } from '../../src/tf-kernels/wasm-binary.js';

describe('wasm binary encoder', () => {
  it('writes unsigned LEB128', () => {
    expect(uleb(0)).toEqual([0x00]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(uleb(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  it('writes signed LEB128', () => {
    expect(sleb(0)).toEqual([0x00]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-65)).toEqual([0xbf, 0x7f]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
  });

  // mulAdd(dst, a, b): dst[0..4] += a[0] * b[0..4], as float32 vectors at byte addresses.
  const mulAdd = {
    name: 'mulAdd',
    params: [I32, I32, I32],
    locals: [],
    body: [
      ...op.localGet(0),
      ...op.localGet(0),
      ...op.v128Load(0),
      ...op.localGet(1),
      ...op.v128Load32Splat(0),
      ...op.localGet(2),
      ...op.v128Load(0),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...op.v128Store(0),
    ],
  };

  for (const shared of [false, true]) {
    it(`makes a module that runs SIMD on an imported ${shared ? 'shared ' : ''}memory`, () => {
      const bytes = encodeModule([mulAdd], shared);
      expect(WebAssembly.validate(bytes)).toBe(true);
      const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 65536, shared: true } : { initial: 1 });
      const run = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.mulAdd as (
        ...args: number[]
      ) => void;
      const heap = new Float32Array(memory.buffer);
      heap.set([1, 2, 3, 4], 0); // dst at byte 0
      heap[4] = 0.5; // a at byte 16
      heap.set([10, 20, 30, 40], 8); // b at byte 32
      run(0, 16, 32);
      expect([...heap.subarray(0, 4)]).toEqual([6, 12, 18, 24]);
    });
  }
});
