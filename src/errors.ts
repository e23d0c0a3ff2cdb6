/**
 * An error the user can fix: printed as one line (no stack trace) and the process exits with `exitCode`.
 * Exit code 2 means bad flags or missing inputs; 1 means the work itself failed.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Node's fs errors carry a code; this turns the common ones into one readable line. */
export function describeFsError(err: unknown, what: string): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return `${what}: not found`;
    case 'EACCES':
    case 'EPERM':
      return `${what}: permission denied`;
    case 'ENOSPC':
      return `${what}: the disk is full; free some space and run the command again`;
    case 'EDQUOT':
      return `${what}: the disk quota is exceeded; free some space and run the command again`;
    case 'EROFS':
      return `${what}: the file system is read-only; choose a writable folder`;
    case 'ENOTDIR':
      return `${what}: not a folder`;
    default:
      return undefined;
  }
}

/** Codes that blame the destination of a write, whichever file the failing call named. */
const DESTINATION_FAILURES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

/**
 * A write that failed because the destination cannot take it (disk full, quota, read-only) becomes one line
 * naming what was being written (`what`, for example "cannot save the model in malaria/model") instead of a
 * temporary file's name; any other error is returned unchanged.
 */
export function asWriteError(err: unknown, what: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err instanceof UserError || code === undefined || !DESTINATION_FAILURES.has(code)) return err;
  return new UserError(describeFsError(err, what) as string, 1);
}
