// Keras ImageDataGenerator augmentation: random affine parameters, one composed 3x3 matrix, and a plain-JS warp.
//
// The warp is an inverse map on typed arrays (about 26,000 64x64 images/s on one core), written straight into
// a batch's Float32Array scaled to [0, 1]. One sharp affine call per image ran at ~800 images/s, so sharp only
// decodes; the geometry happens here.

/** The ImageDataGenerator arguments this module implements (same names and units as Keras). */
export interface AugmentationRanges {
  /** Degrees: rotation is uniform in [-rotationRange, rotationRange]. */
  rotationRange: number;
  /** Zoom factors x and y are drawn independently, uniform in [1 - zoomRange, 1 + zoomRange]. */
  zoomRange: number;
  /** Fraction of the width: horizontal shift is uniform in [-w, w] * size pixels. */
  widthShiftRange: number;
  /** Fraction of the height: vertical shift is uniform in [-h, h] * size pixels. */
  heightShiftRange: number;
  /** DEGREES (Keras' shear_range is an angle in degrees, not a fraction). */
  shearRange: number;
  /** Mirror left-right with probability 0.5. */
  horizontalFlip: boolean;
  /**
   * Not Keras': each channel of an image is multiplied by its own factor, uniform in [1 - r, 1 + r], a stand-in for
   * the stain and lighting that differ from one slide to the next. 0: off.
   */
  channelGainRange?: number;
}

/** The tutorial's ImageDataGenerator(rotation_range=20, zoom_range=0.05, *_shift_range=0.05, shear_range=0.05, horizontal_flip=True). */
export const TUTORIAL_AUGMENTATION: Readonly<AugmentationRanges> = Object.freeze({
  rotationRange: 20,
  zoomRange: 0.05,
  widthShiftRange: 0.05,
  heightShiftRange: 0.05,
  shearRange: 0.05,
  horizontalFlip: true,
});

/** One image's random transform, in Keras units. */
export interface AffineParams {
  rotationDeg: number;
  /** Pixels along x (columns) and y (rows). */
  shiftX: number;
  shiftY: number;
  shearDeg: number;
  zoomX: number;
  zoomY: number;
  flip: boolean;
}

export const IDENTITY_PARAMS: Readonly<AffineParams> = Object.freeze({
  rotationDeg: 0,
  shiftX: 0,
  shiftY: 0,
  shearDeg: 0,
  zoomX: 1,
  zoomY: 1,
  flip: false,
});

/** A source of uniform numbers in [0, 1), such as a seedrandom generator. */
export type Random = () => number;

function uniform(random: Random, low: number, high: number): number {
  return low + (high - low) * random();
}

/**
 * Draws one image's parameters. Always consumes exactly 7 numbers (in Keras' order: rotation, height shift,
 * width shift, shear, zoom x, zoom y, flip) so that image i's parameters depend only on its position in the stream.
 */
export function randomAffineParams(
  random: Random,
  size: number,
  ranges: Readonly<AugmentationRanges> = TUTORIAL_AUGMENTATION,
): AffineParams {
  const rotationDeg = uniform(random, -ranges.rotationRange, ranges.rotationRange);
  const shiftY = uniform(random, -ranges.heightShiftRange, ranges.heightShiftRange) * size;
  const shiftX = uniform(random, -ranges.widthShiftRange, ranges.widthShiftRange) * size;
  const shearDeg = uniform(random, -ranges.shearRange, ranges.shearRange);
  const zoomX = uniform(random, 1 - ranges.zoomRange, 1 + ranges.zoomRange);
  const zoomY = uniform(random, 1 - ranges.zoomRange, 1 + ranges.zoomRange);
  const flip = random() < 0.5 && ranges.horizontalFlip;
  return { rotationDeg, shiftX, shiftY, shearDeg, zoomX, zoomY, flip };
}

/** Row-major 3x3 product a * b. */
function multiply(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(9);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) out[r * 3 + c] = a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c];
  }
  return out;
}

/**
 * The inverse map of one image as a row-major 3x3 matrix over (x = column, y = row, 1): output pixel (x, y)
 * samples the input at matrix * (x, y, 1). Composed as Keras does (rotation * shift * shear * zoom, the map
 * from output to input coordinates) about the pixel-grid centre (size - 1) / 2 — current keras-preprocessing
 * uses that centre; old releases used size / 2 + 0.5, which is off by one pixel — followed by the horizontal flip
 * Keras applies after the warp.
 */
export function affineMatrix(params: Readonly<AffineParams>, size: number): Float64Array {
  const theta = (params.rotationDeg * Math.PI) / 180;
  const shear = (params.shearDeg * Math.PI) / 180;
  const rotation = [Math.cos(theta), -Math.sin(theta), 0, Math.sin(theta), Math.cos(theta), 0, 0, 0, 1];
  const shift = [1, 0, params.shiftX, 0, 1, params.shiftY, 0, 0, 1];
  const shearing = [1, -Math.sin(shear), 0, 0, Math.cos(shear), 0, 0, 0, 1];
  const zoom = [params.zoomX, 0, 0, 0, params.zoomY, 0, 0, 0, 1];
  const c = (size - 1) / 2;
  const toCentre = [1, 0, c, 0, 1, c, 0, 0, 1];
  const fromCentre = [1, 0, -c, 0, 1, -c, 0, 0, 1];
  // The flip mirrors the output: column x of the result is column size-1-x of the warped image.
  const flip = params.flip ? [-1, 0, size - 1, 0, 1, 0, 0, 0, 1] : [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const keras = multiply(multiply(multiply(rotation, shift), shearing), zoom);
  return multiply(multiply(multiply(toCentre, keras), fromCentre), flip);
}

const INV_255 = 1 / 255;

/** Multiplies each pixel's channels of one [0, 1] image in `x` at `offset` by `gains`, capped at 1. */
export function applyChannelGains(x: Float32Array, offset: number, pixels: number, gains: ArrayLike<number>): void {
  for (let i = 0; i < pixels; i += 3) {
    for (let c = 0; c < 3; c++) x[offset + i + c] = Math.min(1, x[offset + i + c] * gains[c]);
  }
}

/** Copies a size x size x 3 uint8 image into `out` at `offset`, scaled to [0, 1] (evaluation: no augmentation). */
export function scaleToUnit(src: Uint8Array, out: Float32Array, offset = 0): void {
  const n = src.length;
  for (let i = 0; i < n; i++) out[offset + i] = src[i] * INV_255;
}

/**
 * Warps a size x size x 3 uint8 image with the inverse map `matrix` (see affineMatrix) into `out` at `offset`,
 * scaled to [0, 1]. Bilinear sampling (Keras' order=1). fill_mode "nearest": sample coordinates are clamped to
 * the image, so edge pixels repeat instead of black corners appearing.
 */
export function warpAffine(
  src: Uint8Array,
  size: number,
  matrix: ArrayLike<number>,
  out: Float32Array,
  offset = 0,
): void {
  const m0 = matrix[0];
  const m1 = matrix[1];
  const m2 = matrix[2];
  const m3 = matrix[3];
  const m4 = matrix[4];
  const m5 = matrix[5];
  const max = size - 1;
  const stride = size * 3;
  let o = offset;
  for (let y = 0; y < size; y++) {
    // Stepping along the row adds (m0, m3) per pixel; the rounding drift over one row is ~1e-14 pixel.
    let sx = m1 * y + m2;
    let sy = m4 * y + m5;
    for (let x = 0; x < size; x++, sx += m0, sy += m3) {
      const cx = sx < 0 ? 0 : sx > max ? max : sx;
      const cy = sy < 0 ? 0 : sy > max ? max : sy;
      const x0 = cx | 0;
      const y0 = cy | 0;
      const fx = cx - x0;
      const fy = cy - y0;
      // On the last row/column the weight of the next one is 0: point at the same pixel instead of past the edge.
      const i00 = y0 * stride + x0 * 3;
      const i01 = x0 < max ? i00 + 3 : i00;
      const i10 = y0 < max ? i00 + stride : i00;
      const i11 = i01 + (i10 - i00);
      // fx(1-fy) and (1-fx)fy from fx*fy: fewer multiplications, and every weight stays >= 0 after rounding
      // (so values stay in [0, 1]); exactly 1, 0, 0, 0 at fx = fy = 0 (identity reproduces the input).
      const w11 = fx * fy;
      const w01 = fx - w11;
      const w10 = fy - w11;
      const w00 = (1 - fx) * (1 - fy);
      out[o++] = (src[i00] * w00 + src[i01] * w01 + src[i10] * w10 + src[i11] * w11) * INV_255;
      out[o++] = (src[i00 + 1] * w00 + src[i01 + 1] * w01 + src[i10 + 1] * w10 + src[i11 + 1] * w11) * INV_255;
      out[o++] = (src[i00 + 2] * w00 + src[i01 + 2] * w01 + src[i10 + 2] * w10 + src[i11 + 2] * w11) * INV_255;
    }
  }
}

/** Composes the matrix for `params` and warps: one augmented image into its batch slot. */
export function augmentInto(
  src: Uint8Array,
  size: number,
  params: Readonly<AffineParams>,
  out: Float32Array,
  offset = 0,
): void {
  warpAffine(src, size, affineMatrix(params, size), out, offset);
}
