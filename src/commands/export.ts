// `malaria export`: the model folder as a TensorFlow.js layers model with uint8 or float16 weights, for the web
// or the field; stock tf.loadLayersModel loads it, and so do `evaluate` and `predict`.
import { Option, type Command } from '@commander-js/extra-typings';
import { withFolderLock } from '../io/lock.js';
import { exportForField } from '../workflows/export.js';
import { QUANTIZATIONS, type Quantization } from '../model/quantize.js';
import { formatExport } from '../report/export-summary.js';
import { createReporter } from '../report/reporter.js';
import { backendOption, modelDirOption } from './options.js';

/** The `export` command with its flags; their types come from these definitions. */
function declareExport(program: Command) {
  return program
    .command('export')
    .description(
      'write the model as a TensorFlow.js layers model with quantized weights (uint8: ~1/4 the size, float16: 1/2)',
    )
    .addOption(modelDirOption())
    .requiredOption('--out <dir>', 'folder to write model.json, weights.bin and metadata.json into')
    .addOption(
      new Option(
        '--quantize <type>',
        'weight encoding: uint8 (kernels; batch-norm and bias vectors as float16), float16, or none (float32)',
      )
        .choices(QUANTIZATIONS)
        .default<Quantization>('none'),
    )
    .option('--force', 'replace the contents of a non-empty --out folder')
    .addOption(backendOption());
}

type ExportFlags = ReturnType<ReturnType<typeof declareExport>['opts']>;

export function registerExport(program: Command): void {
  declareExport(program).action((flags) => runExport(flags));
}

async function runExport(flags: ExportFlags): Promise<void> {
  const report = createReporter();
  const options = { modelDir: flags.modelDir, outDir: flags.out, quantization: flags.quantize, force: flags.force };
  const result = await withFolderLock(flags.out, `--out ${flags.out}`, () =>
    exportForField({ ...options, backend: flags.backend }, report),
  );
  for (const line of formatExport(result, flags.out)) report.result(line);
}
