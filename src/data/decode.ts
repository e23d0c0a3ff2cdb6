// Decoding with sharp to 8-bit RGB, and the resize to the network's input size.
import sharp from 'sharp';

/** Refuse images above this many pixels (decompression bombs); NIH cells are at most ~400x400. */
export const MAX_INPUT_PIXELS = 40_000_000;

/** A decoded image: 8-bit RGB, row-major, 3 bytes per pixel. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** The file exists but is not an image sharp can decode (truncated, empty, text, too many pixels...). */
export class DecodeError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: cannot decode (${reason})`);
    this.name = 'DecodeError';
  }
}

/**
 * Decodes any image sharp reads (PNG, JPEG, WebP, GIF, TIFF; gray, palette, RGBA, 16-bit) to 8-bit RGB.
 * Alpha is dropped; truncated or corrupt data is an error rather than a partly black image.
 */
export async function decodeRgb(input: string | Buffer, name = typeof input === 'string' ? input : 'image'): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new DecodeError(name, reason);
  }
}

/**
 * Nearest-neighbour resize to size x size, sampling pixel centres as PIL's NEAREST does (Keras'
 * flow_from_directory default). Plain JS so that a browser can reproduce it exactly.
 */
export function resizeNearest(image: RgbImage, size: number, out = new Uint8Array(size * size * 3)): Uint8Array {
  const { data, width, height } = image;
  const xScale = width / size;
  const yScale = height / size;
  const columnOffsets = new Int32Array(size);
  for (let x = 0; x < size; x++) columnOffsets[x] = Math.min(width - 1, Math.floor((x + 0.5) * xScale)) * 3;
  let o = 0;
  for (let y = 0; y < size; y++) {
    const row = Math.min(height - 1, Math.floor((y + 0.5) * yScale)) * width * 3;
    for (let x = 0; x < size; x++) {
      const i = row + columnOffsets[x];
      out[o++] = data[i];
      out[o++] = data[i + 1];
      out[o++] = data[i + 2];
    }
  }
  return out;
}

/** Decode then resize: the size x size x 3 uint8 image the network sees (before scaling to [0,1]). */
export async function decodeResized(input: string | Buffer, size: number, name?: string): Promise<Uint8Array> {
  return resizeNearest(await decodeRgb(input, name), size);
}
