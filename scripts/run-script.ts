// The command line of a script in scripts/: a bad flag or input is one line on stderr and exit code 2, as in the CLI.
import { UserError } from '../src/errors.js';

/** Runs a script's main, turning a UserError (or a bad flag) into `<name>: <message>` and its exit code. */
export async function runScript(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    // node:util parseArgs' errors (an unknown flag, a flag without its value) are the user's to fix too.
    const badFlag = String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');
    if (!(err instanceof UserError) && !badFlag) throw err;
    console.error(`${name}: ${(err as Error).message}`);
    process.exitCode = err instanceof UserError ? err.exitCode : 2;
  }
}
