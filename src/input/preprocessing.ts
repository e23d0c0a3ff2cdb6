// How a cell image becomes the network's input, as one value: its size, the resize and the stain step (with the
// colour a balance brings cells to). Training records it in metadata.json, and every later reader of images
// (evaluate, predict, crossval, the field app in the browser) takes it from there whole, so all of them see a cell as
// training saw it. Browser-safe: it must stay dependency-free, like resize.ts and stain.ts.
import { resizeImage, type ResizeMethod, type RgbImage } from './resize.js';
import { applyStain, REFERENCE_CELL_COLOUR, type StainMethod, type StainReference } from './stain.js';

export interface Preprocessing {
  /** The network's input is imageSize x imageSize x 3. */
  imageSize: number;
  /** How a decoded cell is brought to imageSize. */
  resize: ResizeMethod;
  /** What is done to its colours after the resize. */
  stain: StainMethod;
  /** With stain `balance`: the colour each cell is balanced to; absent otherwise. */
  stainReference?: StainReference;
}

/**
 * The preprocessing described by a recipe or a model's metadata: the tutorial's resize and stain where they are
 * absent (older models), and with `balance` the reference (REFERENCE_CELL_COLOUR unless one is saved).
 */
export function preprocessingOf(described: {
  imageSize: number;
  resize?: ResizeMethod;
  stain?: StainMethod;
  stainReference?: StainReference;
}): Preprocessing {
  const stain = described.stain ?? 'keep';
  return {
    imageSize: described.imageSize,
    resize: described.resize ?? 'nearest',
    stain,
    ...(stain === 'balance' ? { stainReference: described.stainReference ?? [...REFERENCE_CELL_COLOUR] } : {}),
  };
}

/** "resize:stain:size:" (a balance with its reference): what a prepared cell depends on besides its file. */
export function preprocessingKey(preprocessing: Preprocessing): string {
  const { imageSize, resize, stain, stainReference } = preprocessingOf(preprocessing);
  const stainStep = stain === 'balance' ? `balance(${stainReference!.join(',')})` : stain;
  return `${resize}:${stainStep}:${imageSize}:`;
}

/**
 * A decoded cell as the network sees it before scaling: resized, then the stain step. Node (decode.ts) and the
 * field app both call this, so their inputs match byte for byte.
 */
export function prepareCell(image: RgbImage, { imageSize, resize, stain, stainReference }: Preprocessing): Uint8Array {
  return applyStain(resizeImage(image, imageSize, resize), stain, stainReference ?? REFERENCE_CELL_COLOUR);
}
