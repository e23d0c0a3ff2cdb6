// `npm run build && node dist/scripts/crossval-so-far.js <crossval --out>`: the figures of the folds a
// cross-validation has finished so far, while it is still running or after it was stopped (BENCHMARKS.md records
// each fold of a long run as it ends). Reads only; the same figures the run prints when its last fold is done.
import { pathToFileURL } from 'node:url';
import { UserError } from '../src/errors.js';
import { formatCrossval } from '../src/report/crossval-report.js';
import { crossvalSoFar } from '../src/workflows/crossval.js';
import { runScript } from './run-script.js';

async function main(args: string[]): Promise<void> {
  if (args.length !== 1) throw new UserError('usage: crossval-so-far <the --out folder of malaria crossval>');
  const figures = await crossvalSoFar(args[0]);
  if (!figures) {
    console.log(`${args[0]}: no fold is finished yet`);
    return;
  }
  console.log(formatCrossval(figures));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runScript('crossval-so-far', () => main(process.argv.slice(2)));
}
