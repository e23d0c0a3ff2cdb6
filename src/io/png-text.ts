// PNG tEXt chunks (PNG specification 11.3.4.3): a keyword and a Latin-1 text. sharp (libvips) cannot write them, so
// the chunk is spliced in after IHDR by hand, and read back by walking the chunks, each checked against its CRC.
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Signature, then IHDR: length (4), type (4), 13 bytes of data, CRC (4). */
const AFTER_IHDR = SIGNATURE.length + 4 + 4 + 13 + 4;

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** The CRC-32 PNG chunks carry (ISO 3309; zlib.crc32 needs Node 20.15, this tool runs on 20.9). */
export function crc32(bytes: Uint8Array): number {
  let crc = -1;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= SIGNATURE.length && SIGNATURE.equals(bytes.subarray(0, SIGNATURE.length));
}

function chunk(type: string, data: Buffer): Buffer {
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(4 + typeAndData.length + 4);
  out.writeUInt32BE(data.length, 0);
  typeAndData.copy(out, 4);
  out.writeUInt32BE(crc32(typeAndData), 4 + typeAndData.length);
  return out;
}

/** `png` with a tEXt chunk `keyword`: `text` right after its IHDR, where a reader of the file's head finds it. */
export function withPngText(png: Uint8Array, keyword: string, text: string): Buffer {
  const bytes = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (!isPng(bytes) || bytes.toString('latin1', SIGNATURE.length + 4, SIGNATURE.length + 8) !== 'IHDR') {
    throw new RangeError('not a PNG that starts with its IHDR chunk');
  }
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword) || keyword !== keyword.trim() || keyword.includes('  ')) {
    throw new RangeError(`"${keyword}" is not a valid PNG text keyword`);
  }
  const textChunk = chunk(
    'tEXt',
    Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.of(0), Buffer.from(text, 'latin1')]),
  );
  return Buffer.concat([bytes.subarray(0, AFTER_IHDR), textChunk, bytes.subarray(AFTER_IHDR)]);
}

/**
 * The tEXt chunks among the first bytes of a PNG (`head`: the whole file or its beginning), keyword to text, up to
 * the image data. A chunk cut off by the end of `head`, or whose CRC does not match, is not read; anything that is
 * not a PNG has none.
 */
export function readPngText(head: Uint8Array): Map<string, string> {
  const texts = new Map<string, string>();
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (!isPng(bytes)) return texts;
  let offset = SIGNATURE.length;
  while (offset + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const end = offset + 8 + length + 4;
    if (type === 'IDAT' || type === 'IEND' || end > bytes.length) break;
    const typeAndData = bytes.subarray(offset + 4, offset + 8 + length);
    if (type === 'tEXt' && crc32(typeAndData) === bytes.readUInt32BE(offset + 8 + length)) {
      const data = typeAndData.subarray(4);
      const separator = data.indexOf(0);
      if (separator > 0) texts.set(data.toString('latin1', 0, separator), data.toString('latin1', separator + 1));
    }
    offset = end;
  }
  return texts;
}
