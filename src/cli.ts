// Builds the commander program and turns every failure into one line and an exit code.
import { Command, CommanderError } from '@commander-js/extra-typings';
import { createRequire } from 'node:module';
import { UserError, describeFsError } from './errors.js';
import { registerCommands } from './commands/index.js';

// Compiled, this file is dist/src/cli.js; run from source (vitest), it is src/cli.ts, one level higher.
const requireHere = createRequire(import.meta.url);
const pkg = (() => {
  try {
    return requireHere('../../package.json');
  } catch {
    return requireHere('../package.json');
  }
})() as { version: string; description: string };

function buildProgram(): Command {
  const program = new Command('malaria')
    .description(pkg.description)
    .version(pkg.version, '-V, --version')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) })
    .addHelpText(
      'after',
      '\nEnvironment:\n' +
        '  MALARIA_WASM_THREADS=N  threads of the wasm backend (default: one per core, at most 8; 1 = its\n' +
        '                          one-thread build)\n' +
        '  MALARIA_DEBUG=1         print the stack trace of an unexpected error',
    );
  registerCommands(program);
  return program;
}

/** Prints one line for an error and returns the exit code it stands for. */
function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // help and version also arrive here, with exit code 0; commander already printed its message.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof UserError) {
    console.error(`malaria: ${err.message}`);
    return err.exitCode;
  }
  const fsMessage = describeFsError(err, (err as NodeJS.ErrnoException).path ?? 'file');
  if (fsMessage) {
    console.error(`malaria: ${fsMessage}`);
    return 1;
  }
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  console.error(`malaria: unexpected error: ${message} (set MALARIA_DEBUG=1 to see the stack trace)`);
  if (process.env.MALARIA_DEBUG) console.error(err);
  return 1;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}
