// Option parsers shared by the commands: each throws commander's InvalidArgumentError with the fix in words.
import { InvalidArgumentError } from 'commander';
import { PRESET_NAMES, type PresetName } from '../model/presets.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError('must be a whole number greater than 0.');
  }
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('must be a whole number, 0 or more.');
  }
  return n;
}

/** A fraction strictly between 0 and 1. */
export function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n >= 1) {
    throw new InvalidArgumentError('must be a number between 0 and 1 (exclusive), for example 0.8.');
  }
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('must be a number greater than 0.');
  }
  return n;
}

/** A comma-separated list of positive whole numbers, such as "3,4,6". */
export function intList(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) <= 0)) {
    throw new InvalidArgumentError('must be a comma-separated list of whole numbers greater than 0, such as 3,4,6.');
  }
  return parts.map(Number);
}

/** --preset: the name of a training recipe. */
export function presetName(value: string): PresetName {
  if ((PRESET_NAMES as string[]).includes(value)) return value as PresetName;
  throw new InvalidArgumentError(`must be one of ${PRESET_NAMES.join(', ')}.`);
}
