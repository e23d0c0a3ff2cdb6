// A minimal WebAssembly binary encoder: a module that imports a memory (the wasm backend's heap) and exports
// functions, with only the instructions our hand-written kernels use. JavaScript has no SIMD; a small module of
// our own, run on the backend's heap, has.
// Format: https://webassembly.github.io/spec/core/binary/ (SIMD opcodes: the 0xfd prefix).

/** Value types. */
export const I32 = 0x7f;
export const V128 = 0x7b;

/** Encoded instructions. */
export type Code = number[];

/** Unsigned LEB128. */
export function uleb(value: number): Code {
  const out: Code = [];
  let rest = value >>> 0;
  do {
    let byte = rest & 0x7f;
    rest >>>= 7;
    if (rest !== 0) byte |= 0x80;
    out.push(byte);
  } while (rest !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(value: number): Code {
  const out: Code = [];
  let rest = value | 0;
  for (;;) {
    const byte = rest & 0x7f;
    rest >>= 7;
    if ((rest === 0 && (byte & 0x40) === 0) || (rest === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const EMPTY_BLOCK = 0x40;
const simd = (opcode: number, ...immediates: number[]): Code => [0xfd, ...uleb(opcode), ...immediates];
/** A memory access's alignment hint (none: unaligned is allowed anyway) and constant byte offset. */
const memarg = (offset: number): Code => [0x00, ...uleb(offset)];

/** The instructions used, by their text-format names. */
export const op = {
  localGet: (index: number): Code => [0x20, ...uleb(index)],
  localSet: (index: number): Code => [0x21, ...uleb(index)],
  localTee: (index: number): Code => [0x22, ...uleb(index)],
  i32Const: (value: number): Code => [0x41, ...sleb(value)],
  i32Add: [0x6a] as Code,
  i32Sub: [0x6b] as Code,
  i32Mul: [0x6c] as Code,
  i32DivU: [0x6e] as Code,
  i32RemU: [0x70] as Code,
  i32And: [0x71] as Code,
  i32LtU: [0x49] as Code,
  i32Eqz: [0x45] as Code,
  i32Eq: [0x46] as Code,
  i32Ne: [0x47] as Code,
  i32LtS: [0x48] as Code,
  i32GtS: [0x4a] as Code,
  i32GeS: [0x4e] as Code,
  select: [0x1b] as Code,
  block: [0x02, EMPTY_BLOCK] as Code,
  loop: [0x03, EMPTY_BLOCK] as Code,
  if: [0x04, EMPTY_BLOCK] as Code,
  else: [0x05] as Code,
  end: [0x0b] as Code,
  br: (depth: number): Code => [0x0c, ...uleb(depth)],
  brIf: (depth: number): Code => [0x0d, ...uleb(depth)],
  v128Load: (offset: number): Code => simd(0x00, ...memarg(offset)),
  v128Load32Splat: (offset: number): Code => simd(0x09, ...memarg(offset)),
  v128Store: (offset: number): Code => simd(0x0b, ...memarg(offset)),
  f32x4Add: simd(0xe4),
  f32x4Sub: simd(0xe5),
  f32x4Mul: simd(0xe6),
  f32x4Max: simd(0xe9),
  f32x4Gt: simd(0x44),
  v128And: simd(0x4e),
  /** Relaxed SIMD's a * b + c (fused where the machine has FMA). */
  f32x4RelaxedMadd: simd(0x105),
  i32x4Splat: simd(0x11),
};

export interface WasmFunction {
  /** The export's name. */
  name: string;
  params: number[];
  /** Runs of locals after the parameters: [count, type]. */
  locals: [number, number][];
  /** The body, without its final `end`. */
  body: Code;
}

const vector = (items: Code[]): Code => [...uleb(items.length), ...items.flat()];
const text = (value: string): Code => vector([...new TextEncoder().encode(value)].map((byte) => [byte]));
const section = (id: number, content: Code): Code => [id, ...uleb(content.length), ...content];

/**
 * A module importing `env.memory` and exporting `functions`. A shared memory (the threaded build's) must be
 * imported as shared, with a maximum at least its own: wasm32's 4 GB.
 */
export function encodeModule(functions: WasmFunction[], sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const types = section(1, vector(functions.map((f) => [0x60, ...vector(f.params.map((p) => [p])), 0])));
  const limits = sharedMemory ? [0x03, ...uleb(0), ...uleb(65536)] : [0x00, ...uleb(0)];
  const imports = section(2, vector([[...text('env'), ...text('memory'), 0x02, ...limits]]));
  const declarations = section(3, vector(functions.map((_, index) => uleb(index))));
  const exports = section(7, vector(functions.map((f, index) => [...text(f.name), 0x00, ...uleb(index)])));
  const bodies = functions.map((f) => {
    const content = [...vector(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.body, ...op.end];
    return [...uleb(content.length), ...content];
  });
  const code = section(10, vector(bodies));
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...types,
    ...imports,
    ...declarations,
    ...exports,
    ...code,
  ]);
}
