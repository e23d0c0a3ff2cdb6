import { describe, expect, it } from 'vitest';
import { prepareCell, preprocessingKey, preprocessingOf } from '../../src/input/preprocessing.js';
import { resizeImage, type RgbImage } from '../../src/input/resize.js';
import { balanceStain, REFERENCE_CELL_COLOUR } from '../../src/input/stain.js';

/** A 6x4 image whose channels and pixels all differ, so a wrong resize or stain step shows. */
const image: RgbImage = {
  width: 6,
  height: 4,
  data: Uint8Array.from({ length: 6 * 4 * 3 }, (_, i) => (i * 37 + 11) % 251),
};

describe('preprocessingOf', () => {
  it("takes an older model's missing resize and stain as the tutorial's, and a balance's missing reference as the constant", () => {
    expect(preprocessingOf({ imageSize: 48 })).toEqual({ imageSize: 48, resize: 'nearest', stain: 'keep' });
    expect(preprocessingOf({ imageSize: 48, stain: 'balance' })).toEqual({
      imageSize: 48,
      resize: 'nearest',
      stain: 'balance',
      stainReference: [...REFERENCE_CELL_COLOUR],
    });
    // A saved reference is kept; a reference without a balance is dropped (it means nothing there).
    expect(preprocessingOf({ imageSize: 8, stain: 'balance', stainReference: [150, 120, 140] }).stainReference).toEqual(
      [150, 120, 140],
    );
    expect(preprocessingOf({ imageSize: 8, stain: 'keep', stainReference: [150, 120, 140] })).not.toHaveProperty(
      'stainReference',
    );
  });
});

describe('preprocessingKey', () => {
  it('differs whenever a prepared cell would: size, resize, stain step or reference', () => {
    const keys = [
      preprocessingKey(preprocessingOf({ imageSize: 48 })),
      preprocessingKey(preprocessingOf({ imageSize: 64 })),
      preprocessingKey(preprocessingOf({ imageSize: 48, resize: 'area' })),
      preprocessingKey(preprocessingOf({ imageSize: 48, stain: 'balance' })),
      preprocessingKey(preprocessingOf({ imageSize: 48, stain: 'balance', stainReference: [150, 120, 140] })),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('prepareCell', () => {
  it('resizes, then balances to the reference it is given', () => {
    const reference = [150, 120, 140] as const;
    const prepared = prepareCell(image, { imageSize: 3, resize: 'area', stain: 'balance', stainReference: reference });
    expect(prepared).toEqual(balanceStain(resizeImage(image, 3, 'area'), reference));
    expect(prepared).not.toEqual(balanceStain(resizeImage(image, 3, 'area')));
    expect(prepareCell(image, { imageSize: 3, resize: 'nearest', stain: 'keep' })).toEqual(
      resizeImage(image, 3, 'nearest'),
    );
  });
});
