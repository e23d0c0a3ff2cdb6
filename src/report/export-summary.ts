// What `export` prints about the model it wrote.
import type { ExportResult } from '../model/export.js';

function formatMegabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

/** The lines `export` prints: the files with their sizes, the saving, and how far the outputs moved. */
export function formatExport(result: ExportResult, out: string): string[] {
  const weights = result.files.find((f) => f.name.endsWith('.bin'));
  const lines = [`wrote ${out}:`];
  if (result.sourceQuantization) {
    lines.unshift(
      `note: the source model already had ${result.sourceQuantization} weights; their rounding carries over`,
    );
  }
  for (const file of result.files) lines.push(`  ${file.name.padEnd(14)} ${String(file.bytes).padStart(10)} bytes`);
  if (weights) {
    const share = ((100 * weights.bytes) / Math.max(1, result.float32WeightBytes)).toFixed(1);
    lines.push(
      `weights: ${formatMegabytes(weights.bytes)} as ${result.quantization === 'none' ? 'float32' : result.quantization} against ${formatMegabytes(result.float32WeightBytes)} as float32 (${share}%)`,
    );
  }
  const { uint8, float16, float32, other } = result.counts;
  lines.push(
    `tensors: ${uint8} uint8, ${float16} float16, ${float32 + other} unchanged; largest weight change ${(100 * result.maxWeightError).toFixed(3)}% of its tensor's largest value`,
  );
  if (result.beyondFloat16.length > 0) {
    lines.push(`kept as float32 (values beyond float16's ±65504): ${result.beyondFloat16.join(', ')}`);
  }
  if (result.maxProbabilityDifference !== undefined) {
    lines.push(
      `reloaded: largest probability change on ${result.checkImages} random images ${result.maxProbabilityDifference.toExponential(2)}`,
    );
  }
  return lines;
}
