// Which class a two-class model screens for: the one whose P(class) is thresholded, whose recall is the sensitivity
// and whose share of a slide is the parasitemia. `train` chooses it (--positive, else Parasitized) and saves it in
// metadata.json as `positiveClass`; everything after reads it from there, never from the classes' order.
import { UserError } from '../errors.js';

/** The class a screener must not miss in the NIH data, and the default of `train --positive`. */
export const DEFAULT_POSITIVE_CLASS = 'Parasitized';

/** A model's classes as its outputs are ordered, and the one it screens for (set for every two-class model). */
export interface ClassLabels {
  readonly classNames: readonly string[];
  readonly positiveClass?: string;
}

/** The output index of the positive class of a two-class model. */
export function positiveIndexOf(labels: ClassLabels): number {
  const index = labels.positiveClass === undefined ? -1 : labels.classNames.indexOf(labels.positiveClass);
  // parseMetadata and `train` set positiveClass to one of the classes: anything else is a programming error.
  if (index < 0)
    throw new Error(`no positive class among ${labels.classNames.join(', ')} (got ${String(labels.positiveClass)})`);
  return index;
}

/** The output index of the other class of a two-class model. */
export function negativeIndexOf(labels: ClassLabels): number {
  return positiveIndexOf(labels) === 0 ? 1 : 0;
}

/**
 * The class `train` screens for in data of `classNames` (found in `where`): `flag` (--positive) when it names one
 * of them, else Parasitized when it is one; with neither, a UserError asking for --positive rather than a guess.
 * Data of more than two classes gets no screening figures, so it has no positive class and --positive is refused.
 */
export function choosePositiveClass(
  classNames: readonly string[],
  flag: string | undefined,
  where: string,
): string | undefined {
  const list = classNames.join(', ');
  if (classNames.length !== 2) {
    if (flag === undefined) return undefined;
    throw new UserError(
      `--positive picks the class a two-class model screens for, but ${where} has ${classNames.length} classes (${list}): leave --positive out`,
    );
  }
  if (flag !== undefined) {
    if (classNames.includes(flag)) return flag;
    throw new UserError(`--positive ${flag} is not a class of ${where} (${list}): pass one of them`);
  }
  if (classNames.includes(DEFAULT_POSITIVE_CLASS)) return DEFAULT_POSITIVE_CLASS;
  throw new UserError(
    `${where} has the classes ${classNames[0]} and ${classNames[1]}, neither of them ${DEFAULT_POSITIVE_CLASS}: name the class to screen for with --positive <class>`,
  );
}
