// Stain balance: each cell's colour brought to one reference, so a slide stained darker or bluer than any the model
// was trained on looks like the others. Shared byte for byte by training (Node) and the field app (browser): it
// must stay dependency-free, like resize.ts.

/**
 * What is done to a cell's colours after the resize: `keep` them (the tutorial), or `balance` each cell to the
 * reference colour. Saved in metadata.json like the resize, so evaluate, predict and the app do what training did.
 */
export const STAIN_METHODS = ['keep', 'balance'] as const;
export type StainMethod = (typeof STAIN_METHODS)[number];

/** An RGB colour a cell's mean is balanced to; saved in metadata.json as `stainReference` beside `stain: balance`. */
export type StainReference = readonly [number, number, number];

/**
 * The training patients' mean cell: each cell's mean colour (its foreground pixels), averaged per patient and then
 * over the 129 training patients of the 12,000-image per-patient split (measured on every sixth cell). `train
 * --stain balance` balances to it and saves it with the model; models saved before the reference was saved used it.
 */
export const REFERENCE_CELL_COLOUR: StainReference = [186, 155, 165];

/**
 * A usable reference: three channel means, each above 0 (a channel balanced to 0 would be erased) and at most 255.
 * Read from metadata.json, so anything else is refused rather than balanced to.
 */
export function isStainReference(value: unknown): value is StainReference {
  return (
    Array.isArray(value) &&
    value.length === 3 &&
    value.every((channel) => typeof channel === 'number' && channel > 0 && channel <= 255)
  );
}

/**
 * A pixel whose channels sum to this or less is background: NIH crops put each cell on black (0, 0, 0), and the
 * resize keeps that black exact or nearly so.
 */
export const BACKGROUND_SUM = 30;

/**
 * Scales each channel of a cell's foreground pixels (in place) so that their mean is the reference colour ("grey
 * world" per cell). The background stays black; a channel is capped at 255. An image with no foreground is left
 * as it is.
 */
export function balanceStain(pixels: Uint8Array, reference: StainReference = REFERENCE_CELL_COLOUR): Uint8Array {
  let r = 0;
  let g = 0;
  let b = 0;
  let count = 0;
  for (let i = 0; i < pixels.length; i += 3) {
    if (pixels[i] + pixels[i + 1] + pixels[i + 2] <= BACKGROUND_SUM) continue;
    r += pixels[i];
    g += pixels[i + 1];
    b += pixels[i + 2];
    count++;
  }
  if (count === 0) return pixels;
  // A channel whose mean is 0 has nothing to scale; its gain stays 1.
  const gains = [r, g, b].map((sum, c) => (sum > 0 ? (reference[c] * count) / sum : 1));
  for (let i = 0; i < pixels.length; i += 3) {
    if (pixels[i] + pixels[i + 1] + pixels[i + 2] <= BACKGROUND_SUM) continue;
    for (let c = 0; c < 3; c++) pixels[i + c] = Math.min(255, Math.round(pixels[i + c] * gains[c]));
  }
  return pixels;
}

/** Applies `method` to a resized cell (in place) and returns it; `balance` balances to `reference`. */
export function applyStain(
  pixels: Uint8Array,
  method: StainMethod,
  reference: StainReference = REFERENCE_CELL_COLOUR,
): Uint8Array {
  return method === 'balance' ? balanceStain(pixels, reference) : pixels;
}
