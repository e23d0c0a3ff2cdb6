// The resize to the network's input size, shared byte for byte by training (Node) and the field app (browser):
// it must stay dependency-free, because the app ships its compiled JS to the page as an ES module.

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
