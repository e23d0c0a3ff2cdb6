// `node dist/scripts/filter-grad-bench.js [--preset <name>] [--batch <n>] [--rounds <n>] [--baseline <file>] [--json]`
// Times the wasm Conv2DBackpropFilter (src/tf-kernels/conv2d-backprop-filter.ts) on every filter-gradient shape of
// a preset's ResNet (issue 26), read from the built model's Conv2D layers. With --baseline, the same shapes also
// go through another build's kernel (the compiled conv2d-backprop-filter.js of another checkout, e.g. the last
// commit's, whose imports resolve to this tree's node_modules), alternating the two in every round, so that the
// ratio holds on a shared machine even when absolute times drift; their results are compared too.
// Threads: MALARIA_WASM_THREADS, as in the CLI; pin the process (`taskset -c 1`) for steady figures.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import { tf } from '../src/tf.js';
import { selectBackend } from '../src/backends/select.js';
import { convolutionShapes, type ConvolutionShape } from '../src/model/resnet.js';
import { positiveInt } from '../src/commands/options.js';
import { PRESETS, PRESET_NAMES, type PresetName } from '../src/model/presets.js';
import { conv2DBackpropFilterKernel } from '../src/tf-kernels/conv2d-backprop-filter.js';
import { runScript } from './run-script.js';

interface BenchFlags {
  preset: PresetName;
  batch: number;
  rounds: number;
  baseline?: string;
  json?: boolean;
}

interface ShapeTiming {
  shape: string;
  count: number;
  ms: number;
  baselineMs?: number;
  /** Largest difference from the baseline's dW, relative to its largest magnitude. */
  difference?: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** The distinct Conv2D shapes of the preset's ResNet at `batch` images, in the order the model first uses them. */
function networkShapes(preset: PresetName, batch: number): ConvolutionShape[] {
  const { imageSize, stages, filters } = PRESETS[preset];
  return convolutionShapes({ inputSize: imageSize, classes: 2, stages, filters }, batch);
}

function describe(s: ConvolutionShape): string {
  const [, h, w, ci] = s.input;
  const [fh, fw, , co] = s.filter;
  return `${h}x${w}x${ci} -> ${co}, ${fh}x${fw} stride ${s.strides[0]}`;
}

/** Runs a Conv2DBackpropFilter kernel function on the active (wasm) backend; returns its ms and output. */
function timeKernel(kernel: tf.KernelFunc, x: tf.Tensor, dy: tf.Tensor, s: ConvolutionShape) {
  const backend = tf.backend();
  const attrs = { strides: s.strides, pad: s.pad, dataFormat: 'NHWC', filterShape: s.filter };
  const started = performance.now();
  const out = kernel({ inputs: { x, dy }, backend, attrs: attrs as unknown as tf.NamedAttrMap }) as tf.TensorInfo;
  return { ms: performance.now() - started, out };
}

function relativeDifference(a: tf.TensorInfo, b: tf.TensorInfo): number {
  const backend = tf.backend();
  const va = backend.readSync(a.dataId) as Float32Array;
  const vb = backend.readSync(b.dataId) as Float32Array;
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < va.length; i++) {
    scale = Math.max(scale, Math.abs(vb[i]));
    worst = Math.max(worst, Math.abs(va[i] - vb[i]));
  }
  return scale > 0 ? worst / scale : worst;
}

function timeShape(s: ConvolutionShape, rounds: number, baseline: tf.KernelFunc | undefined): ShapeTiming {
  const backend = tf.backend();
  const outShape = tf.tidy(
    () => tf.conv2d(tf.zeros(s.input) as tf.Tensor4D, tf.zeros(s.filter) as tf.Tensor4D, s.strides, s.pad).shape,
  );
  const x = tf.randomUniform(s.input, -1, 1);
  const dy = tf.randomUniform(outShape, -1, 1);
  const ours: number[] = [];
  const theirs: number[] = [];
  let difference: number | undefined;
  // A warm-up of each, then rounds that alternate which goes first.
  for (let round = -1; round < rounds; round++) {
    const order = round % 2 === 0 || !baseline ? ['ours', 'baseline'] : ['baseline', 'ours'];
    const outputs: Record<string, tf.TensorInfo> = {};
    for (const who of order) {
      if (who === 'baseline' && !baseline) continue;
      const { ms, out } = timeKernel(who === 'ours' ? conv2DBackpropFilterKernel : baseline!, x, dy, s);
      if (round >= 0) (who === 'ours' ? ours : theirs).push(ms);
      outputs[who] = out;
    }
    if (outputs.baseline) {
      difference = Math.max(difference ?? 0, relativeDifference(outputs.ours, outputs.baseline));
      backend.disposeData(outputs.baseline.dataId);
    }
    backend.disposeData(outputs.ours.dataId);
  }
  tf.dispose([x, dy]);
  return {
    shape: describe(s),
    count: s.count,
    ms: median(ours),
    baselineMs: baseline ? median(theirs) : undefined,
    difference,
  };
}

async function main(): Promise<void> {
  const flags = new Command('filter-grad-bench')
    .addOption(new Option('--preset <name>', "whose ResNet's shapes to time").choices(PRESET_NAMES).default('laptop'))
    .option('--batch <n>', 'images per step', positiveInt, 32)
    .option('--rounds <n>', 'timed runs of each kernel per shape (after one warm-up)', positiveInt, 5)
    .option('--baseline <file>', "another build's compiled conv2d-backprop-filter.js to time against")
    .option('--json', 'print only the JSON line')
    .parse(process.argv)
    .opts<BenchFlags>();

  let baseline: tf.KernelFunc | undefined;
  if (flags.baseline) {
    const url = pathToFileURL(path.resolve(flags.baseline)).href;
    baseline = ((await import(url)) as { conv2DBackpropFilterKernel: tf.KernelFunc }).conv2DBackpropFilterKernel;
  }
  const backend = await selectBackend('wasm');
  const timings = networkShapes(flags.preset, flags.batch).map((s) => timeShape(s, flags.rounds, baseline));
  const total = (pick: (t: ShapeTiming) => number) => timings.reduce((sum, t) => sum + t.count * pick(t), 0);
  const summary = {
    preset: flags.preset,
    batch: flags.batch,
    backend: backend.device,
    ms: total((t) => t.ms),
    baselineMs: baseline ? total((t) => t.baselineMs!) : undefined,
    shapes: timings,
  };
  if (flags.json) {
    console.log(JSON.stringify(summary));
    return;
  }
  console.log(
    `${flags.preset} ResNet, batch ${flags.batch}, wasm on ${backend.device}; median of ${flags.rounds} runs`,
  );
  const header = ['shape', 'convs', 'ms', ...(baseline ? ['baseline ms', 'speed-up', 'max rel. diff'] : [])];
  console.log(header.join(' | '));
  for (const t of timings) {
    const cells = [t.shape, String(t.count), t.ms.toFixed(2)];
    if (t.baselineMs !== undefined) {
      cells.push(t.baselineMs.toFixed(2), `${(t.baselineMs / t.ms).toFixed(2)}x`, (t.difference ?? 0).toExponential(1));
    }
    console.log(cells.join(' | '));
  }
  const line = [`network (each shape x its convs): ${summary.ms.toFixed(1)} ms`];
  if (summary.baselineMs !== undefined) {
    line.push(`baseline ${summary.baselineMs.toFixed(1)} ms`, `${(summary.baselineMs / summary.ms).toFixed(2)}x`);
  }
  console.log(line.join(', '));
}

void runScript('filter-grad-bench', main);
