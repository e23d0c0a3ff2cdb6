// `npm run build && node dist/scripts/ensemble.js a.json b.json ... [--positive Parasitized] [--threshold 0.5]`
// where each file holds `npx malaria predict <data>/<split> --model-dir <model> --json` of one model on the same
// split. Averages P(positive) per file over the models (an ensemble of their probabilities), calls a cell positive
// at --threshold, and prints each model's and the ensemble's balanced accuracy against the class folder each file
// lies in, and how many cells every model, or at least one, gets wrong (BENCHMARKS.md, "Ensembles").
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { UserError } from '../src/errors.js';
import { decide } from '../src/stats/decide.js';
import { DEFAULT_POSITIVE_CLASS } from '../src/stats/positive-class.js';
import { runScript } from './run-script.js';

/** One model's `predict --json`: P(positive) by file. */
export type ModelProbabilities = Map<string, number>;

/** Reads a `predict --json` array; a failed file or anything else than that array is one line. */
export function positiveProbabilities(json: unknown, positive: string, name: string): ModelProbabilities {
  if (!Array.isArray(json)) throw new UserError(`${name} is not the JSON array of \`malaria predict --json\``);
  const probabilities: ModelProbabilities = new Map();
  for (const row of json as { file?: unknown; label?: unknown; probability?: unknown; error?: unknown }[]) {
    if (typeof row?.file !== 'string' || typeof row.label !== 'string' || typeof row.probability !== 'number') {
      throw new UserError(`${name}: ${JSON.stringify(row)} is not a classified file (predict again without errors)`);
    }
    // `probability` is that of the label predict chose; with two classes the other one has the rest.
    probabilities.set(row.file, row.label === positive ? row.probability : 1 - row.probability);
  }
  return probabilities;
}

/** The class a file's folder names: `predict <data>/testing` lists `<data>/testing/<Class>/<file>`. */
export const truthOf = (file: string): string => path.basename(path.dirname(file));

export interface Scores {
  sensitivity: number;
  specificity: number;
  balancedAccuracy: number;
}

/** Sensitivity, specificity and their mean for P(positive) by file, called positive at `threshold`. */
export function scores(probabilities: ModelProbabilities, positive: string, threshold: number): Scores {
  const counts = { tp: 0, fn: 0, tn: 0, fp: 0 };
  for (const [file, p] of probabilities) {
    const called = decide(p, threshold);
    if (truthOf(file) === positive) counts[called ? 'tp' : 'fn']++;
    else counts[called ? 'fp' : 'tn']++;
  }
  if (counts.tp + counts.fn === 0 || counts.tn + counts.fp === 0) {
    throw new UserError(
      `the files need cells of ${positive} and of another class, each in a folder named by its class`,
    );
  }
  const sensitivity = counts.tp / (counts.tp + counts.fn);
  const specificity = counts.tn / (counts.tn + counts.fp);
  return { sensitivity, specificity, balancedAccuracy: (sensitivity + specificity) / 2 };
}

/** The mean P(positive) per file over the models, which must have classified the same files. */
export function ensemble(models: readonly ModelProbabilities[], names: readonly string[]): ModelProbabilities {
  const [first] = models;
  models.forEach((model, i) => {
    if (model.size !== first.size || [...model.keys()].some((file) => !first.has(file))) {
      throw new UserError(`${names[i]} and ${names[0]} classified different files: predict on the same split`);
    }
  });
  return new Map(
    [...first.keys()].map((file) => [file, models.reduce((sum, m) => sum + m.get(file)!, 0) / models.length]),
  );
}

/** Cells every model gets wrong, and cells at least one does. */
export function sharedMistakes(models: readonly ModelProbabilities[], positive: string, threshold: number) {
  let all = 0;
  let any = 0;
  for (const file of models[0].keys()) {
    const wrong = models.filter((m) => decide(m.get(file)!, threshold) !== (truthOf(file) === positive)).length;
    if (wrong === models.length) all++;
    if (wrong > 0) any++;
  }
  return { all, any };
}

const percent = (x: number): string => `${(100 * x).toFixed(2)}%`;
const line = (name: string, s: Scores): string =>
  `${name}: balanced accuracy ${percent(s.balancedAccuracy)} (sensitivity ${percent(s.sensitivity)}, specificity ${percent(s.specificity)})`;

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      positive: { type: 'string', default: DEFAULT_POSITIVE_CLASS },
      threshold: { type: 'string', default: '0.5' },
    },
  });
  const threshold = Number(values.threshold);
  if (positionals.length === 0 || !(threshold >= 0 && threshold <= 1)) {
    throw new UserError('pass the `predict --json` files of the models, and a --threshold between 0 and 1');
  }
  const models: ModelProbabilities[] = [];
  for (const file of positionals) {
    let json: unknown;
    try {
      json = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (err) {
      throw new UserError(`${file} cannot be read as JSON (${(err as Error).message.split('\n')[0]})`);
    }
    models.push(positiveProbabilities(json, values.positive, file));
  }
  models.forEach((model, i) => console.log(line(positionals[i], scores(model, values.positive, threshold))));
  const mean = ensemble(models, positionals);
  console.log(
    line(`ensemble of ${models.length} (mean P(${values.positive}))`, scores(mean, values.positive, threshold)),
  );
  const { all, any } = sharedMistakes(models, values.positive, threshold);
  console.log(`cells every model gets wrong: ${all}; at least one: ${any}; of ${mean.size}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runScript('ensemble', () => main(process.argv.slice(2)));
}
