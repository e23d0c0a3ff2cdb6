// The browser side of inference, preprocessing exactly as training does: decode to 8-bit RGB (alpha dropped, no
// colour management), the model's resize and stain step (the same compiled modules Node uses), scale by 1/255
// (scaleToUnit, also shared), NHWC float32.
import type { RgbImage } from '../../input/resize.js';
import { prepareCell, type Preprocessing } from '../../input/preprocessing.js';
import { scaleToUnit } from '../../input/augment.js';
import { batchProbabilities, type InferenceOptions } from '../../model/inference.js';
import { tf, type LayersModel } from './tf-global.js';

/** Images classified per model call: large enough to amortise the call, small enough to show progress. */
export const BATCH_SIZE = 16;

/**
 * Decodes an image file to RGB bytes. colorSpaceConversion 'none' keeps the file's bytes as sharp does (no ICC or
 * gamma conversion); premultiplyAlpha 'none' leaves RGB alone where the image is opaque. The 2D canvas stores
 * premultiplied pixels, so where alpha < 255 RGB is rounded; cell images are opaque.
 */
export async function decodeRgb(file: Blob, maxPixels: number): Promise<RgbImage> {
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    const { width, height } = bitmap;
    if (width * height > maxPixels) throw new Error(`${width}x${height} is larger than ${maxPixels} pixels`);
    const context = canvas2d(width, height);
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, width, height).data;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0, o = 0; i < rgba.length; i += 4) {
      data[o++] = rgba[i];
      data[o++] = rgba[i + 1];
      data[o++] = rgba[i + 2];
    }
    return { data, width, height };
  } finally {
    bitmap.close();
  }
}

type Canvas2d = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

function canvas2d(width: number, height: number): Canvas2d {
  // OffscreenCanvas needs no document; older Safari lacks it.
  const canvas =
    typeof OffscreenCanvas === 'function'
      ? new OffscreenCanvas(width, height)
      : Object.assign(document.createElement('canvas'), { width, height });
  const context = canvas.getContext('2d', { willReadFrequently: true }) as Canvas2d | null;
  if (!context) throw new Error('this browser has no 2D canvas');
  return context;
}

/** The network's input for one image: size x size x 3 float32 in [0, 1], prepared as training prepared its cells. */
export async function cellInput(
  file: Blob,
  preprocessing: Preprocessing,
  maxInputPixels: number,
): Promise<Float32Array> {
  const pixels = prepareCell(await decodeRgb(file, maxInputPixels), preprocessing);
  const input = new Float32Array(pixels.length);
  scaleToUnit(pixels, input);
  return input;
}

/** Class probabilities of each input (one row of `classes` numbers per image), computed as Node computes them. */
export async function predict(
  model: LayersModel,
  inputs: Float32Array[],
  size: number,
  options: InferenceOptions,
): Promise<Float32Array[]> {
  const batch = new Float32Array(inputs.length * size * size * 3);
  inputs.forEach((input, i) => batch.set(input, i * input.length));
  const values = await batchProbabilities(tf, model, batch, inputs.length, options);
  const classes = values.length / inputs.length;
  return inputs.map((_, i) => values.slice(i * classes, (i + 1) * classes));
}
