// `malaria backends`: what this machine can run, and how fast, before a long training run (and for bug reports).
import { Option, type Command } from '@commander-js/extra-typings';
import { TRAIN_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';
import { BACKEND_CHOICES, BACKEND_NAMES, type BackendName } from '../backends/select.js';
import { measureBackend, type MeasureOptions } from '../workflows/measure-backends.js';
import { formatSurvey, surveyBackends } from '../workflows/backends-survey.js';
import { checkArchitectureFlags } from '../model/recipe.js';
import { createReporter } from '../report/reporter.js';
import {
  batchSizeOption,
  filtersOption,
  imageSizeOption,
  jsonOption,
  positiveNumber,
  stagesOption,
} from './options.js';

function names(value: string): string[] {
  return value.split(',').map((name) => name.trim());
}

/** The `backends` command with its flags; their types come from these definitions. */
function declareBackends(program: Command) {
  return program
    .command('backends')
    .description('list every backend: whether it loads here, its device, and its measured train and inference img/s')
    .addOption(imageSizeOption())
    .addOption(stagesOption())
    .addOption(filtersOption())
    .addOption(batchSizeOption('both'))
    .option(
      '--seconds <s>',
      'seconds to measure inference, and again training, after one warm-up batch',
      positiveNumber,
      3,
    )
    .option(
      '--deadline <s>',
      'longest one backend may take, loading and warm-up included; slower ones are reported as such',
      positiveNumber,
      120,
    )
    .option('--only <list>', `backends to measure (${BACKEND_NAMES.join(',')})`, names)
    .addOption(jsonOption('one JSON object'))
    .addOption(
      new Option('--child <name>', 'measure one backend in this process (used by the command itself)')
        .choices(BACKEND_CHOICES)
        .hideHelp(),
    );
}

type BackendsFlags = ReturnType<ReturnType<typeof declareBackends>['opts']>;

export function registerBackends(program: Command): void {
  declareBackends(program).action((flags) => runBackends(flags));
}

async function runBackends(flags: BackendsFlags): Promise<void> {
  checkArchitectureFlags(flags);
  const unknown = (flags.only ?? []).filter((name) => !(BACKEND_NAMES as readonly string[]).includes(name));
  if (unknown.length)
    throw new UserError(`--only: unknown backend ${unknown.join(', ')}: use ${BACKEND_NAMES.join(', ')}`);
  const options: MeasureOptions = {
    architecture: {
      inputSize: flags.imageSize,
      classes: 2,
      stages: flags.stages,
      filters: flags.filters,
      l2: TRAIN_DEFAULTS.l2,
      seed: 1,
    },
    batchSize: flags.batchSize,
    seconds: flags.seconds,
  };
  const report = createReporter({ json: flags.json });
  if (flags.child) {
    await measureBackend(flags.child, options, (event) => report.result(JSON.stringify(event)));
    return;
  }
  const survey = await surveyBackends({
    ...options,
    only: flags.only as BackendName[] | undefined,
    deadlineSeconds: flags.deadline,
    onProgress: flags.json ? undefined : report.note,
  });
  if (flags.json) {
    report.result(
      JSON.stringify({
        architecture: options.architecture,
        batchSize: options.batchSize,
        seconds: options.seconds,
        ...survey,
      }),
    );
  } else {
    for (const line of formatSurvey(survey, options)) report.result(line);
  }
}
