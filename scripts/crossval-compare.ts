// `npm run build && node dist/scripts/crossval-compare.js <crossval --out of recipe a> <of recipe b>`: two recipes
// cross-validated on the same cells and folds (same --input, --folds, --seed), compared on the folds both have
// finished: each fold's balanced accuracy, the pooled figures, and the pooled difference b - a with a paired
// patient-bootstrap interval. How a cheaper recipe is judged against today's (BENCHMARKS.md). Reads only.
import { pathToFileURL } from 'node:url';
import { UserError } from '../src/errors.js';
import { formatComparison, formatCrossval } from '../src/report/crossval-report.js';
import { compareCrossvalRuns } from '../src/workflows/crossval.js';
import { runScript } from './run-script.js';

async function main(args: string[]): Promise<void> {
  if (args.length !== 2)
    throw new UserError('usage: crossval-compare <--out of malaria crossval, recipe a> <--out of recipe b>');
  const [a, b] = args;
  const comparison = await compareCrossvalRuns(a, b);
  if (!comparison) {
    console.log(`${a} and ${b}: no fold is finished in both yet`);
    return;
  }
  console.log(`a: ${a}\n${formatCrossval(comparison.a)}\n`);
  console.log(`b: ${b}\n${formatCrossval(comparison.b)}\n`);
  console.log(formatComparison(comparison, { a, b }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runScript('crossval-compare', () => main(process.argv.slice(2)));
}
