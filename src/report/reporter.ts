// The one output channel of the commands: results on stdout, notes (the backend line, skipped files, warnings)
// and progress bars on stderr. Under --json stdout holds the one JSON result and nothing else: the lines a human
// reads beside a result (`detail`) move to stderr with the notes.
import { ProgressBar, type ProgressOptions } from './progress.js';

export interface Reporter {
  /** The command's result: stdout. */
  result(text: string): void;
  /** Part of the human-readable result, or beside the JSON result: stdout, or stderr under --json. */
  detail(text: string): void;
  /** What happens and why (the backend line, skipped files, warnings): stderr. */
  note(text: string): void;
  /** A progress bar on stderr. */
  progress(options: Omit<ProgressOptions, 'stream'>): ProgressBar;
  readonly json: boolean;
}

export function createReporter(options: { json?: boolean } = {}): Reporter {
  const json = options.json ?? false;
  // console (not the streams) so that output keeps its order and tests can capture it.
  const stdout = (text: string) => console.log(text);
  const stderr = (text: string) => console.error(text);
  return {
    json,
    result: stdout,
    detail: json ? stderr : stdout,
    note: stderr,
    progress: (bar) => new ProgressBar({ ...bar, stream: process.stderr }),
  };
}

/** A reporter that drops everything: for library calls whose caller wants no output. */
export const silentReporter: Reporter = {
  json: false,
  result: () => undefined,
  detail: () => undefined,
  note: () => undefined,
  progress: (bar) => new ProgressBar({ ...bar, stream: nullStream() }),
};

function nullStream(): NodeJS.WriteStream {
  return { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;
}
