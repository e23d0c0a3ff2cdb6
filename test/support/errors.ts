// Assertions on the one-line UserError that library functions throw for bad input.
import { expect } from 'vitest';
import { UserError } from '../../src/errors.js';

/** `promise` rejects with a one-line UserError matching `pattern`, with this exit code; returns the error. */
export async function expectUserError(promise: Promise<unknown>, pattern: RegExp, exitCode = 2): Promise<UserError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  const userError = err as UserError;
  expect(userError.message).toMatch(pattern);
  expect(userError.message).not.toContain('\n');
  expect(userError.exitCode).toBe(exitCode);
  return userError;
}
