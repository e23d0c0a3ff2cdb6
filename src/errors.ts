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
    case 'ENOTDIR':
      return `${what}: not a folder`;
    default:
      return undefined;
  }
}
