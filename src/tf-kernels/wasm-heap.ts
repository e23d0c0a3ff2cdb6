// Direct access to the wasm backend's heap, for data movement that its own kernels do with slow scalar loops.
// These are internals of @tensorflow/tfjs-backend-wasm 4.x (BackendWasm.wasm.HEAPU8, dataIdMap, makeOutput),
// typed here with only what is used.
import { tf } from '../tf.js';

interface WasmTensorData {
  memoryOffset: number;
}

export interface WasmBackendInternals {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: tf.DataId): WasmTensorData | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
}

export function asWasmBackend(backend: unknown): WasmBackendInternals {
  const candidate = backend as Partial<WasmBackendInternals>;
  if (!candidate?.wasm?.HEAPU8 || !candidate.dataIdMap || !candidate.makeOutput) {
    throw new Error('expected the tfjs wasm backend');
  }
  return candidate as WasmBackendInternals;
}

/** Byte offset of a tensor's data in the heap. */
export function byteOffset(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (!data) throw new Error('tensor is not on the wasm backend');
  return data.memoryOffset;
}

/**
 * A float view of the whole heap. Take it after the last allocation of a step: allocating may grow the memory,
 * which detaches earlier views.
 */
export function heapF32(backend: WasmBackendInternals): Float32Array {
  const bytes = backend.wasm.HEAPU8;
  return new Float32Array(bytes.buffer, 0, bytes.byteLength >>> 2);
}

/** Float index of a float32 tensor's first element in `heapF32`. */
export function floatIndex(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  return byteOffset(backend, t) >>> 2;
}

/**
 * Writes `count` copies of the `length` elements at `start`, the first of which is already in place: each copy
 * doubles what is done, so a large repeat costs a few memmoves, not `count` of them.
 */
export function repeatInPlace(heap: Uint8Array | Float32Array, start: number, length: number, count: number): void {
  let filled = length;
  const total = length * count;
  while (filled < total) {
    const chunk = Math.min(filled, total - filled);
    heap.copyWithin(start + filled, start, start + chunk);
    filled += chunk;
  }
}

/** Where the wasm backend's emscripten module keeps its memory: exported, or made in JS by the threaded build. */
interface EmscriptenMemory {
  wasm?: { asm?: { memory?: WebAssembly.Memory }; wasmMemory?: WebAssembly.Memory };
}

/** The wasm backend's memory, for a module of our own to import (it then sees the heap grow); undefined if hidden. */
export function heapMemory(backend: unknown): WebAssembly.Memory | undefined {
  const { wasm } = backend as EmscriptenMemory;
  return wasm?.wasmMemory ?? wasm?.asm?.memory;
}

/** Whether `memory` is the threaded build's (shared): a module importing it must declare it shared. */
export function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}
