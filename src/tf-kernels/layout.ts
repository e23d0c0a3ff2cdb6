// Data movement on the wasm heap in plain JS loops. The wasm backend's Transpose, StridedSlice and PadV2 walk
// every element with index arithmetic (its 2-D transpose writes with a stride of the whole matrix); these
// cache-blocked loops and memmoves are several times faster on the shapes of a ResNet's gradients.
// All offsets are float indices into one Float32Array view of the heap.

/** Rows of a block transposed at once (measured best of 16..128 for 32 and 128 channels). */
const BLOCK_ROWS = 128;

/**
 * out[c * rows + r] = heap[src + r * channels + c]: a [rows, channels] matrix transposed, in row blocks that stay
 * in cache, four rows per step (about twice as fast as one).
 */
export function transposeRows(heap: Float32Array, src: number, rows: number, channels: number, dst: number): void {
  for (let r0 = 0; r0 < rows; r0 += BLOCK_ROWS) {
    const r1 = Math.min(rows, r0 + BLOCK_ROWS);
    for (let c = 0; c < channels; c++) {
      let d = dst + c * rows + r0;
      let s = src + r0 * channels + c;
      let r = r0;
      for (; r + 4 <= r1; r += 4, d += 4, s += 4 * channels) {
        heap[d] = heap[s];
        heap[d + 1] = heap[s + channels];
        heap[d + 2] = heap[s + 2 * channels];
        heap[d + 3] = heap[s + 3 * channels];
      }
      for (; r < r1; r++, s += channels) heap[d++] = heap[s];
    }
  }
}

/**
 * out[c * rowStarts.length + r] = heap[rowStarts[r] + c] for c < channels: gathers rows (pixels) given by their
 * start index and writes them transposed, channels first (transposeRows is faster for consecutive rows).
 */
export function gatherTransposed(heap: Float32Array, rowStarts: Int32Array, channels: number, dst: number): void {
  const rows = rowStarts.length;
  for (let r0 = 0; r0 < rows; r0 += BLOCK_ROWS) {
    const r1 = Math.min(rows, r0 + BLOCK_ROWS);
    for (let c = 0; c < channels; c++) {
      let d = dst + c * rows + r0;
      for (let r = r0; r < r1; r++) heap[d++] = heap[rowStarts[r] + c];
    }
  }
}

/** Start indices of the NHWC pixels read by a 1x1 convolution with stride (sh, sw) and no padding. */
export function stridedPixelRows(
  src: number,
  batch: number,
  inHeight: number,
  inWidth: number,
  channels: number,
  outHeight: number,
  outWidth: number,
  strideHeight: number,
  strideWidth: number,
): Int32Array {
  const starts = new Int32Array(batch * outHeight * outWidth);
  let r = 0;
  for (let n = 0; n < batch; n++) {
    for (let y = 0; y < outHeight; y++) {
      const rowStart = src + (n * inHeight + y * strideHeight) * inWidth * channels;
      for (let x = 0; x < outWidth; x++) starts[r++] = rowStart + x * strideWidth * channels;
    }
  }
  return starts;
}

/** Copies the rows given by `rowStarts` (each `channels` long) one after another to `dst`. */
export function gatherRows(heap: Float32Array, rowStarts: Int32Array, channels: number, dst: number): void {
  for (let r = 0; r < rowStarts.length; r++) heap.copyWithin(dst + r * channels, rowStarts[r], rowStarts[r] + channels);
}

export interface PatchGeometry {
  /** Number of [height, width] planes (channels x batch for a channels-first input). */
  planes: number;
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  strideHeight: number;
  strideWidth: number;
}

/**
 * For each plane, out[y, x] = in[y*sh + rowShift, x*sw + colShift], zero outside the input: one filter tap's
 * view of a channels-first input, as a dense [planes, outHeight, outWidth] block at `dst`.
 */
export function gatherTap(
  heap: Float32Array,
  src: number,
  dst: number,
  g: PatchGeometry,
  rowShift: number,
  colShift: number,
): void {
  const { planes, inHeight, inWidth, outHeight, outWidth, strideHeight: sh, strideWidth: sw } = g;
  if (sh === 1 && sw === 1 && outHeight === inHeight && outWidth === inWidth) {
    shiftPlanes(heap, src, dst, planes, inHeight, inWidth, rowShift, colShift);
    return;
  }
  // Output columns whose input column x*sw + colShift lies inside [0, inWidth).
  const x0 = Math.max(0, Math.ceil(-colShift / sw));
  const x1 = Math.max(x0, Math.min(outWidth, Math.floor((inWidth - 1 - colShift) / sw) + 1));
  let d = dst;
  for (let p = 0; p < planes; p++) {
    const plane = src + p * inHeight * inWidth;
    for (let y = 0; y < outHeight; y++) {
      const iy = y * sh + rowShift;
      if (iy < 0 || iy >= inHeight) {
        heap.fill(0, d, d + outWidth);
        d += outWidth;
        continue;
      }
      const row = plane + iy * inWidth + colShift;
      if (x0 > 0) heap.fill(0, d, d + x0);
      if (sw === 1) {
        heap.copyWithin(d + x0, row + x0, row + x1);
      } else {
        for (let x = x0; x < x1; x++) heap[d + x] = heap[row + x * sw];
      }
      if (x1 < outWidth) heap.fill(0, d + x1, d + outWidth);
      d += outWidth;
    }
  }
}

/**
 * gatherTap for stride 1 and output size = input size ("same"): the planes are one block shifted by
 * rowShift * width + colShift, so one memmove moves them all; what the shift pulled in from a neighbouring row or
 * plane is then zeroed. Rows of 16-64 values made the per-row copies cost ~5x more, in call overhead.
 */
function shiftPlanes(
  heap: Float32Array,
  src: number,
  dst: number,
  planes: number,
  height: number,
  width: number,
  rowShift: number,
  colShift: number,
): void {
  const planeSize = height * width;
  const total = planes * planeSize;
  const shift = rowShift * width + colShift;
  // dst[i] = src[i + shift] for the i whose source lies inside the block; the rest is zeroed below anyway.
  const first = Math.min(total, Math.max(0, -shift));
  const last = Math.max(first, Math.min(total, total - shift));
  heap.copyWithin(dst + first, src + first + shift, src + last + shift);
  heap.fill(0, dst, dst + first);
  heap.fill(0, dst + last, dst + total);
  // Rows whose source row is outside the plane: the top -rowShift rows or the bottom rowShift rows.
  const y0 = Math.min(height, Math.max(0, -rowShift));
  const y1 = Math.max(y0, Math.min(height, height - rowShift));
  // Columns likewise: the first -colShift or the last colShift of every row.
  const x0 = Math.min(width, Math.max(0, -colShift));
  const x1 = Math.max(x0, Math.min(width, width - colShift));
  for (let p = 0; p < planes; p++) {
    const plane = dst + p * planeSize;
    if (y0 > 0) heap.fill(0, plane, plane + y0 * width);
    if (y1 < height) heap.fill(0, plane + y1 * width, plane + planeSize);
    if (x0 === 0 && x1 === width) continue;
    for (let y = y0; y < y1; y++) {
      const row = plane + y * width;
      for (let x = 0; x < x0; x++) heap[row + x] = 0;
      for (let x = x1; x < width; x++) heap[row + x] = 0;
    }
  }
}
