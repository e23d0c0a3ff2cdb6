// Decoding with sharp to 8-bit RGB, and the resize to the network's input size.
import sharp from 'sharp';
import { prepareCell, type Preprocessing } from './preprocessing.js';
import { resizeNearest, type RgbImage } from './resize.js';

// Moved to resize.ts so the browser app can run the same code; re-exported for existing imports.
export { resizeNearest, type RgbImage };

/** Refuse images above this many pixels (decompression bombs); NIH cells are at most ~400x400. */
export const MAX_INPUT_PIXELS = 40_000_000;

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
export async function decodeRgb(
  input: string | Buffer,
  name = typeof input === 'string' ? input : 'image',
): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
    };
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new DecodeError(name, reason);
  }
}

/** Decode, then prepareCell: the imageSize x imageSize x 3 uint8 image the network sees (before scaling to [0,1]). */
export async function decodeCell(
  input: string | Buffer,
  preprocessing: Preprocessing,
  name?: string,
): Promise<Uint8Array> {
  return prepareCell(await decodeRgb(input, name), preprocessing);
}
