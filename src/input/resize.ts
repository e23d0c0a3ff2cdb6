// The resize to the network's input size, shared byte for byte by training (Node) and the field app (browser):
// it must stay dependency-free, because the app ships its compiled JS to the page as an ES module.

/**
 * How a cell becomes the network's input size: `nearest` is Keras' default (the tutorial's); `area` averages every
 * source pixel under each output pixel. A model is trained with one and saves it in metadata.json, so every path
 * that feeds it (evaluate, predict, the app) resizes the same way.
 */
export const RESIZE_METHODS = ['nearest', 'area'] as const;
export type ResizeMethod = (typeof RESIZE_METHODS)[number];

/** A decoded image: 8-bit RGB, row-major, 3 bytes per pixel. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Nearest-neighbour resize to size x size, sampling pixel centres as PIL's NEAREST does (Keras'
 * flow_from_directory default): source index = floor((dst + 0.5) * srcSize / dstSize).
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

/** One axis of an area resize: for each output index, the source indices it covers and their weights (sum 1). */
interface AxisWeights {
  /** first[d]..first[d + 1] index into `source` and `weight` for output index d. */
  first: Int32Array;
  source: Int32Array;
  weight: Float32Array;
}

function axisWeights(srcSize: number, dstSize: number): AxisWeights {
  const scale = srcSize / dstSize;
  const first = new Int32Array(dstSize + 1);
  const source: number[] = [];
  const weight: number[] = [];
  for (let d = 0; d < dstSize; d++) {
    first[d] = source.length;
    const lo = d * scale;
    const hi = (d + 1) * scale;
    for (let s = Math.floor(lo); s < Math.min(srcSize, Math.ceil(hi)); s++) {
      const overlap = Math.min(hi, s + 1) - Math.max(lo, s);
      if (overlap <= 1e-9) continue;
      source.push(s);
      weight.push(overlap / scale);
    }
  }
  first[dstSize] = source.length;
  return { first, source: Int32Array.from(source), weight: Float32Array.from(weight) };
}

/**
 * Area resize to size x size (OpenCV's INTER_AREA, PIL's BOX): each output pixel is the mean of the source
 * pixels its footprint covers, weighted by overlap. Unlike nearest sampling, which at 130 -> 48 keeps one source
 * pixel in seven and can miss a parasite's small chromatin dot altogether, every source pixel counts.
 */
export function resizeArea(image: RgbImage, size: number, out = new Uint8Array(size * size * 3)): Uint8Array {
  const { data, width, height } = image;
  const columns = axisWeights(width, size);
  const rows = axisWeights(height, size);
  // Horizontal pass: height x size x 3 floats; then the vertical pass into the output.
  const across = new Float32Array(height * size * 3);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = columns.first[x]; k < columns.first[x + 1]; k++) {
        const i = row + columns.source[k] * 3;
        const w = columns.weight[k];
        r += data[i] * w;
        g += data[i + 1] * w;
        b += data[i + 2] * w;
      }
      const o = (y * size + x) * 3;
      across[o] = r;
      across[o + 1] = g;
      across[o + 2] = b;
    }
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = rows.first[y]; k < rows.first[y + 1]; k++) {
        const i = (rows.source[k] * size + x) * 3;
        const w = rows.weight[k];
        r += across[i] * w;
        g += across[i + 1] * w;
        b += across[i + 2] * w;
      }
      const o = (y * size + x) * 3;
      out[o] = Math.min(255, Math.round(r));
      out[o + 1] = Math.min(255, Math.round(g));
      out[o + 2] = Math.min(255, Math.round(b));
    }
  }
  return out;
}

/** Resizes `image` to size x size with `method`. */
export function resizeImage(image: RgbImage, size: number, method: ResizeMethod): Uint8Array {
  return method === 'area' ? resizeArea(image, size) : resizeNearest(image, size);
}
