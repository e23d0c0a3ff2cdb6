// The import rules of src/ (README, "Project layout"), checked by `npm run lint`. Layers, top to bottom:
//   cli.ts, commands/                      parse the command line and print
//   workflows/, app/                       the use cases (and the field app, written and served)
//   model/, input/, dataset/, report/      the network and its folder; images into batches; building the data set; presentation
//   stats/                                 numbers from predictions
//   io/, backends/, tf-kernels/, tf.ts, config.ts, errors.ts
// A module may import its own layer's and lower layers' modules, never a higher one's, and no import circle.
/** @type {import('dependency-cruiser').IConfiguration} */
const layer = (name, from, forbidden) => ({
  name,
  severity: 'error',
  comment: `${from} may not import ${forbidden.join(', ')}`,
  from: { path: `^src/(${from})` },
  to: { path: `^src/(${forbidden.join('|')})` },
});

const COMMANDS = ['cli\\.ts', 'commands/'];
const USE_CASES = ['workflows/', 'app/(?!browser/)'];
const MIDDLE = ['model/', 'input/', 'dataset/', 'report/'];

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'no import circles', from: {}, to: { circular: true } },
    layer('use-cases-below-commands', USE_CASES.join('|'), COMMANDS),
    layer('middle-below-use-cases', MIDDLE.join('|'), [...COMMANDS, ...USE_CASES, 'app/']),
    layer('model-never-presents', 'model/', ['report/']),
    layer('data-knows-no-model', 'input/|dataset/', ['model/', 'report/', 'stats/']),
    layer('stats-are-numbers', 'stats/', [...COMMANDS, ...USE_CASES, 'app/', ...MIDDLE]),
    layer('foundation-imports-foundation', 'io/|backends/|tf-kernels/|tf\\.ts|config\\.ts|errors\\.ts', [
      ...COMMANDS,
      ...USE_CASES,
      'app/',
      ...MIDDLE,
      'stats/',
    ]),
    {
      name: 'tf-only-through-tf-ts',
      severity: 'error',
      comment:
        'TensorFlow.js is imported by src/tf.ts alone (backends load their own packages; the browser has a global)',
      from: { path: '^src/', pathNot: '^src/(tf\\.ts|backends/|tf-kernels/|app/browser/)' },
      to: { path: '@tensorflow/', dependencyTypesNot: ['type-only', 'type-import'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
