// `malaria export`: the model folder as a TensorFlow.js layers model with uint8 or float16 weights, for the web
// or the field; stock tf.loadLayersModel loads it, and so do `evaluate` and `predict`.
import { Option, type Command } from '@commander-js/extra-typings';
import { selectBackend } from '../tf.js';
import { exportModel, type ExportResult } from '../model/export.js';
import { QUANTIZATIONS, type Quantization } from '../model/quantize.js';
import { backendOption, modelDirOption } from './options.js';

/** The `export` command with its flags; their types come from these definitions. */
function declareExport(program: Command) {
  return program
    .command('export')
    .description('write the model as a TensorFlow.js layers model with quantized weights (uint8: ~1/4 the size, float16: 1/2)')
    .addOption(modelDirOption())
    .requiredOption('--out <dir>', 'folder to write model.json, weights.bin and metadata.json into')
    .addOption(
      new Option('--quantize <type>', 'weight encoding: uint8 (kernels; batch-norm and bias vectors as float16), float16, or none (float32)')
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

export function formatMegabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

/** The lines `export` prints: the files with their sizes, the saving, and how far the outputs moved. */
export function formatExport(result: ExportResult, out: string): string[] {
  const weights = result.files.find((f) => f.name.endsWith('.bin'));
  const lines = [`wrote ${out}:`];
  if (result.sourceQuantization) {
    lines.unshift(`note: the source model already had ${result.sourceQuantization} weights; their rounding carries over`);
  }
  for (const file of result.files) lines.push(`  ${file.name.padEnd(14)} ${String(file.bytes).padStart(10)} bytes`);
  if (weights) {
    const share = ((100 * weights.bytes) / Math.max(1, result.float32WeightBytes)).toFixed(1);
    lines.push(`weights: ${formatMegabytes(weights.bytes)} as ${result.quantization === 'none' ? 'float32' : result.quantization} against ${formatMegabytes(result.float32WeightBytes)} as float32 (${share}%)`);
  }
  const { uint8, float16, float32, other } = result.counts;
  lines.push(`tensors: ${uint8} uint8, ${float16} float16, ${float32 + other} unchanged; largest weight change ${(100 * result.maxWeightError).toFixed(3)}% of its tensor's largest value`);
  if (result.beyondFloat16.length > 0) {
    lines.push(`kept as float32 (values beyond float16's ±65504): ${result.beyondFloat16.join(', ')}`);
  }
  if (result.maxProbabilityDifference !== undefined) {
    lines.push(`reloaded: largest probability change on ${result.checkImages} random images ${result.maxProbabilityDifference.toExponential(2)}`);
  }
  return lines;
}

async function runExport(flags: ExportFlags): Promise<void> {
  const backend = await selectBackend(flags.backend);
  const result = await exportModel({ modelDir: flags.modelDir, outDir: flags.out, quantization: flags.quantize, force: flags.force });
  // After the work, so a model folder that is not ours is one line and nothing else.
  console.error(backend.message);
  for (const line of formatExport(result, flags.out)) console.log(line);
}
