import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { PRESETS, type PresetSettings } from '../../src/model/presets.js';
import { checkRecipe, recipeOf, RECIPE_FLAGS, type RecipeFlags } from '../../src/model/recipe.js';

const tutorial = (): PresetSettings => ({
  ...PRESETS.tutorial,
  stages: [...PRESETS.tutorial.stages],
  filters: [...PRESETS.tutorial.filters],
});

/** The one line checkRecipe throws for `recipe`, or undefined when it passes. */
function refusal(recipe: PresetSettings): string | undefined {
  try {
    checkRecipe(recipe);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    return (err as UserError).message;
  }
}

describe('checkRecipe', () => {
  it("passes every preset's recipe", () => {
    for (const preset of Object.values(PRESETS))
      expect(refusal({ ...preset, stages: [...preset.stages], filters: [...preset.filters] })).toBeUndefined();
  });

  it('refuses a recipe built in code with the line the flag parser gives for the same value', () => {
    const cases: [Partial<PresetSettings>, string][] = [
      [{ imageSize: 4 }, '--image-size must be at least 8'],
      [{ rotation: 270 }, '--rotation must be between 0 and 180 degrees (180 turns the images every way)'],
      [{ rotation: -1 }, '--rotation must be between 0 and 180 degrees (180 turns the images every way)'],
      [{ color: 1 }, '--color must be at least 0 and below 1, for example 0.1'],
      [{ labelSmoothing: 1 }, '--label-smoothing must be at least 0 and below 1, for example 0.1'],
      [{ l2: 0.5 }, '--l2 must be below 0.1 (the tutorial uses 0.0005; 0 turns the penalty off)'],
      [{ l2: Number.NaN }, '--l2 must be below 0.1 (the tutorial uses 0.0005; 0 turns the penalty off)'],
      [{ ema: 1 }, '--ema must be 0 (off) or a decay between 0 and 1, for example 0.999'],
      [{ ema: -0.5 }, '--ema must be 0 (off) or a decay between 0 and 1, for example 0.999'],
    ];
    for (const [change, message] of cases) expect(refusal({ ...tutorial(), ...change }), message).toBe(message);
    // The edges that are in range.
    for (const change of [{ imageSize: 8 }, { rotation: 180 }, { rotation: 0 }, { color: 0 }, { ema: 0 }, { l2: 0 }])
      expect(refusal({ ...tutorial(), ...change })).toBeUndefined();
  });

  it('checks the settings that must agree: --filters with --stages, --warmup with --epochs', () => {
    expect(refusal({ ...tutorial(), stages: [3, 4], filters: [8, 8] })).toBe(
      '--filters needs 3 numbers (the stem, then one per stage of --stages 3,4), got 2',
    );
    expect(refusal({ ...tutorial(), stages: [1], filters: [3, 6] })).toBe(
      '--filters of the stages must be multiples of 4 (the bottleneck uses K/4 filters)',
    );
    expect(refusal({ ...tutorial(), epochs: 2, warmup: 2 })).toBe(
      '--warmup 2 leaves no epoch to train at the full rate: use fewer than --epochs 2',
    );
    expect(refusal({ ...tutorial(), epochs: 2, warmup: 1.5 })).toBeUndefined();
  });
});

describe('recipeOf', () => {
  it('takes the recipe out of the flags, leaves the rest, and adds the momentum no flag sets', () => {
    const flags: RecipeFlags & { data: string; modelDir: string } = {
      ...tutorial(),
      seed: 3,
      preset: 'tutorial',
      positive: 'Parasitized',
      data: 'cells',
      modelDir: 'model',
    };
    const recipe = recipeOf(flags);
    expect(recipe).toEqual({ ...tutorial(), seed: 3, preset: 'tutorial', positive: 'Parasitized', momentum: 0.9 });
    expect(Object.keys(recipe)).toEqual([...RECIPE_FLAGS, 'momentum']);
    // Its lists are its own: a change to the flags' does not reach a saved recipe.
    flags.stages.push(9);
    expect(recipe.stages).toEqual(PRESETS.tutorial.stages);
  });
});
