// `malaria backends`: what this machine can run, and how fast, before a long training run (and for bug reports).
import { Option, type Command } from 'commander';
import { TRAIN_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import { BACKEND_NAMES, parseBackendChoice, type BackendChoice, type BackendName } from '../tf.js';
import { measureBackend, type MeasureOptions } from '../backends/measure.js';
import { formatSurvey, surveyBackends } from '../backends/survey.js';
import { intList, positiveInt, positiveNumber } from './options.js';

interface BackendsFlags {
  imageSize: number;
  stages: number[];
  filters: number[];
  batchSize: number;
  seconds: number;
  deadline: number;
  only?: string[];
  json?: boolean;
  child?: BackendChoice;
}

function names(value: string): string[] {
  return value.split(',').map((name) => name.trim());
}

export function registerBackends(program: Command): void {
  program
    .command('backends')
    .description('list every backend: whether it loads here, its device, and its measured train and inference img/s')
    .option('--image-size <n>', 'images are n x n', positiveInt, TRAIN_DEFAULTS.imageSize)
    .option('--stages <list>', 'residual modules per stage', intList, [...TRAIN_DEFAULTS.stages])
    .option('--filters <list>', 'filters of the stem and of each stage', intList, [...TRAIN_DEFAULTS.filters])
    .option('--batch-size <n>', 'images per batch', positiveInt, TRAIN_DEFAULTS.batchSize)
    .option('--seconds <s>', 'seconds to measure inference, and again training, after one warm-up batch', positiveNumber, 3)
    .option('--deadline <s>', 'longest one backend may take, loading and warm-up included; slower ones are reported as such', positiveNumber, 120)
    .option('--only <list>', `backends to measure (${BACKEND_NAMES.join(',')})`, names)
    .option('--json', 'print one JSON object')
    .addOption(new Option('--child <name>', 'measure one backend in this process (used by the command itself)').argParser(parseBackendChoice).hideHelp())
    .action((flags: BackendsFlags) => runBackends(flags));
}

async function runBackends(flags: BackendsFlags): Promise<void> {
  if (flags.filters.length !== flags.stages.length + 1) {
    throw new UserError(`--filters needs ${flags.stages.length + 1} numbers (the stem, then one per stage of --stages ${flags.stages.join(',')}), got ${flags.filters.length}`);
  }
  const unknown = (flags.only ?? []).filter((name) => !(BACKEND_NAMES as readonly string[]).includes(name));
  if (unknown.length) throw new UserError(`--only: unknown backend ${unknown.join(', ')}: use ${BACKEND_NAMES.join(', ')}`);
  const options: MeasureOptions = {
    architecture: { inputSize: flags.imageSize, classes: 2, stages: flags.stages, filters: flags.filters, l2: TRAIN_DEFAULTS.l2, seed: 1 },
    batchSize: flags.batchSize,
    seconds: flags.seconds,
  };
  if (flags.child) {
    await measureBackend(flags.child, options, (event) => console.log(JSON.stringify(event)));
    return;
  }
  const survey = await surveyBackends({
    ...options,
    only: flags.only as BackendName[] | undefined,
    deadlineSeconds: flags.deadline,
    onProgress: flags.json ? undefined : (line) => console.error(line),
  });
  if (flags.json) {
    console.log(JSON.stringify({ architecture: options.architecture, batchSize: options.batchSize, seconds: options.seconds, ...survey }));
  } else {
    for (const line of formatSurvey(survey, options)) console.log(line);
  }
}
