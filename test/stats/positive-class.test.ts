import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { choosePositiveClass, negativeIndexOf, positiveIndexOf } from '../../src/stats/positive-class.js';

describe('choosePositiveClass', () => {
  it('takes --positive when it names one of the two classes, else Parasitized', () => {
    expect(choosePositiveClass(['Healthy', 'Sick'], 'Sick', 'data/training')).toBe('Sick');
    expect(choosePositiveClass(['Healthy', 'Sick'], 'Healthy', 'data/training')).toBe('Healthy');
    expect(choosePositiveClass(['Parasitized', 'Uninfected'], undefined, 'data/training')).toBe('Parasitized');
    expect(choosePositiveClass(['Parasitized', 'Uninfected'], 'Uninfected', 'data/training')).toBe('Uninfected');
    expect(choosePositiveClass(['Other', 'Parasitized'], undefined, 'data/training')).toBe('Parasitized');
  });

  it('refuses to guess, and refuses a class that is not there, in one line', () => {
    const refusal = (classNames: string[], flag: string | undefined): UserError => {
      try {
        choosePositiveClass(classNames, flag, 'data/training');
      } catch (err) {
        expect(err).toBeInstanceOf(UserError);
        expect((err as UserError).exitCode).toBe(2);
        expect((err as UserError).message).not.toContain('\n');
        return err as UserError;
      }
      throw new Error('not refused');
    };
    expect(refusal(['Healthy', 'Sick'], undefined).message).toBe(
      'data/training has the classes Healthy and Sick, neither of them Parasitized: name the class to screen for with --positive <class>',
    );
    expect(refusal(['Healthy', 'Sick'], 'sick').message).toBe(
      '--positive sick is not a class of data/training (Healthy, Sick): pass one of them',
    );
    expect(refusal(['a', 'b', 'c'], 'a').message).toMatch(/has 3 classes \(a, b, c\): leave --positive out$/);
    // More than two classes are scored by argmax: no positive class, nothing to refuse.
    expect(choosePositiveClass(['a', 'b', 'Parasitized'], undefined, 'data/training')).toBeUndefined();
  });
});

describe('positiveIndexOf', () => {
  it("is the index of the model's positive class, never a default by position", () => {
    expect(positiveIndexOf({ classNames: ['Healthy', 'Sick'], positiveClass: 'Sick' })).toBe(1);
    expect(negativeIndexOf({ classNames: ['Healthy', 'Sick'], positiveClass: 'Sick' })).toBe(0);
    expect(positiveIndexOf({ classNames: ['Parasitized', 'Uninfected'], positiveClass: 'Parasitized' })).toBe(0);
    expect(() => positiveIndexOf({ classNames: ['Healthy', 'Sick'] })).toThrow(/no positive class/);
    expect(() => positiveIndexOf({ classNames: ['Healthy', 'Sick'], positiveClass: 'Parasitized' })).toThrow();
  });
});
