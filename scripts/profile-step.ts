// `npm run profile-step -- [--preset <name>] [--steps <n>] [--warmup <n>] [--json]`
// Where one training step's time goes on the wasm backend (issue 26): the bench's step (src/model/train.ts'
// trainStep on the preset's ResNet, batch 32, random images), timed per kernel. tf.profile gives no kernel times on
// wasm, so every registered wasm kernel's kernelFunc is wrapped with a timer; a kernel that runs another through
// the engine is charged only its own time (self time). The rest of the step is JavaScript outside kernels: the
// engine's dispatch and bookkeeping, the gradient tape, the gradient functions' own code and the optimizer's.
// wasm kernels run synchronously, so wall time around a kernelFunc is its time (with one thread: its whole cost).
// Threads: MALARIA_WASM_THREADS, as in the CLI; pin the process (`taskset -c 1`) for steady figures.
import { Command, Option } from 'commander';
import { TRAIN_DEFAULTS } from '../src/config.js';
import { tf } from '../src/tf.js';
import { selectBackend } from '../src/backends/select.js';
import { activationsPerImage, chooseMicroBatch } from '../src/model/micro-batch.js';
import { buildResNet } from '../src/model/resnet.js';
import { trainStep } from '../src/model/train.js';
import { positiveInt } from '../src/commands/options.js';
import { PRESETS, PRESET_NAMES, type PresetName } from '../src/model/presets.js';
import { runScript } from './run-script.js';

interface ProfileFlags {
  preset: PresetName;
  steps: number;
  warmup: number;
  json?: boolean;
}

/** Which part of a step a kernel ran in, read from the engine's tape state and the optimizer's call. */
type Phase = 'forward' | 'backward' | 'optimizer' | 'other';
const PHASES: readonly Phase[] = ['forward', 'backward', 'optimizer', 'other'];

interface KernelTotals {
  ms: number;
  calls: number;
  byPhase: Record<Phase, number>;
}

/** The parts of tfjs' Engine read here. */
interface EngineInternals {
  state: { activeTape: unknown[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  tidy(nameOrFn: unknown, fn?: unknown): unknown;
}

interface WasmModule {
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Timers around the wasm kernels, the heap's malloc/free and the step's phases; `recording` turns them on. */
class StepProfiler {
  recording = false;
  optimizerRunning = false;
  readonly kernels = new Map<string, KernelTotals>();
  /** Time of the inner kernels of each kernel running now (to subtract from its own), innermost last. */
  private childMs: number[] = [];
  /** Names of the kernels running now, outermost first. */
  private running: string[] = [];
  /** The forward kernel whose gradient runs now, in the backward pass. */
  private gradientOf: string[] = [];
  /** Per op: kernel time (all nested kernels) and the wall time of its gradient functions. */
  readonly ops = new Map<string, { kernelMs: number; calls: number; gradientWallMs: number }>();
  mallocMs = 0;
  mallocs = 0;
  frees = 0;
  readonly phaseWallMs: Record<'forward' | 'backward' | 'optimizer', number> = {
    forward: 0,
    backward: 0,
    optimizer: 0,
  };

  constructor(private readonly engine: EngineInternals) {}

  phase(): Phase {
    if (this.optimizerRunning) return 'optimizer';
    if (this.engine.state.gradientDepth > 0) return 'forward';
    if (this.engine.state.activeTape !== null) return 'backward';
    return 'other';
  }

  /** Replaces every registered wasm kernel by a timed one (keeping its setup and dispose functions). */
  wrapKernels(): void {
    for (const config of tf.getKernelsForBackend('wasm')) {
      const original = config.kernelFunc;
      const timed: tf.KernelFunc = (args) => {
        if (!this.recording) return original(args);
        const phase = this.phase();
        // Charged to the op the model ran: the outermost kernel, or in the backward pass the forward kernel whose
        // gradient this is ('between gradients': summing the gradients of a tensor read twice).
        const op =
          phase === 'backward'
            ? `grad ${this.gradientOf.at(-1) ?? '(between gradients)'}`
            : `${phase === 'optimizer' ? 'optimizer ' : ''}${this.running[0] ?? config.kernelName}`;
        const outermost = this.running.length === 0;
        this.running.push(config.kernelName);
        this.childMs.push(0);
        const started = performance.now();
        try {
          return original(args);
        } finally {
          const ms = performance.now() - started;
          this.running.pop();
          if (outermost) this.chargeOp(op, ms, phase !== 'backward');
          const own = ms - (this.childMs.pop() ?? 0);
          if (this.childMs.length) this.childMs[this.childMs.length - 1] += ms;
          const totals = this.kernels.get(config.kernelName) ?? {
            ms: 0,
            calls: 0,
            byPhase: { forward: 0, backward: 0, optimizer: 0, other: 0 },
          };
          totals.ms += own;
          totals.calls++;
          totals.byPhase[phase] += own;
          this.kernels.set(config.kernelName, totals);
        }
      };
      tf.unregisterKernel(config.kernelName, 'wasm');
      tf.registerKernel({ ...config, kernelFunc: timed });
    }
  }

  private chargeOp(op: string, kernelMs: number, countCall: boolean): void {
    const totals = this.ops.get(op) ?? { kernelMs: 0, calls: 0, gradientWallMs: 0 };
    totals.kernelMs += kernelMs;
    if (countCall) totals.calls++;
    this.ops.set(op, totals);
  }

  /** Charges the gradient functions of the tape's nodes (tfjs' or src/model/lean-grads.ts') to their kernel. */
  private wrapGradients(nodes: unknown[] | null): void {
    for (const node of (nodes ?? []) as { kernelName: string; gradient?: (dys: tf.Tensor[]) => unknown }[]) {
      const gradient = node.gradient;
      if (!gradient) continue;
      const name = node.kernelName;
      const charged = <T>(run: () => T): T => {
        this.gradientOf.push(name);
        const started = performance.now();
        try {
          return run();
        } finally {
          this.gradientOf.pop();
          const totals = this.ops.get(`grad ${name}`) ?? { kernelMs: 0, calls: 0, gradientWallMs: 0 };
          totals.gradientWallMs += performance.now() - started;
          this.ops.set(`grad ${name}`, totals);
        }
      };
      node.gradient = (dys) => {
        const functions = charged(() => gradient(dys)) as Record<string, () => tf.Tensor>;
        const totals = this.ops.get(`grad ${name}`);
        if (totals) totals.calls++;
        return Object.fromEntries(Object.entries(functions).map(([input, f]) => [input, () => charged(f)]));
      };
    }
  }

  /** Times the wasm heap's allocations made from JavaScript (every tensor's output buffer, every upload). */
  wrapHeap(wasm: WasmModule): void {
    const malloc = wasm._malloc.bind(wasm);
    const free = wasm._free.bind(wasm);
    wasm._malloc = (bytes) => {
      if (!this.recording) return malloc(bytes);
      const started = performance.now();
      const pointer = malloc(bytes);
      this.mallocMs += performance.now() - started;
      this.mallocs++;
      return pointer;
    };
    wasm._free = (pointer) => {
      if (!this.recording) return free(pointer);
      const started = performance.now();
      free(pointer);
      this.mallocMs += performance.now() - started;
      this.frees++;
    };
  }

  /** Wall time of the forward pass (the tape is on), the backward pass (tidy 'backward') and applyGradients. */
  wrapPhases(optimizer: tf.Optimizer): void {
    const engine = this.engine;
    const startTape = engine.startTape.bind(engine);
    const endTape = engine.endTape.bind(engine);
    const tidy = engine.tidy.bind(engine) as (nameOrFn: unknown, fn?: unknown) => unknown;
    let forwardStarted = 0;
    engine.startTape = () => {
      forwardStarted = performance.now();
      startTape();
    };
    engine.endTape = () => {
      endTape();
      if (this.recording) {
        this.phaseWallMs.forward += performance.now() - forwardStarted;
        this.wrapGradients(engine.state.activeTape);
      }
    };
    engine.tidy = (nameOrFn: unknown, fn?: unknown) => {
      if (nameOrFn !== 'backward' || !this.recording) return tidy(nameOrFn, fn);
      const started = performance.now();
      try {
        return tidy(nameOrFn, fn);
      } finally {
        this.phaseWallMs.backward += performance.now() - started;
      }
    };
    const applyGradients = optimizer.applyGradients.bind(optimizer);
    optimizer.applyGradients = (gradients) => {
      const started = performance.now();
      this.optimizerRunning = true;
      try {
        applyGradients(gradients);
      } finally {
        this.optimizerRunning = false;
        if (this.recording) this.phaseWallMs.optimizer += performance.now() - started;
      }
    };
  }
}

async function main(): Promise<void> {
  const flags = new Command('profile-step')
    .addOption(new Option('--preset <name>', 'whose ResNet to profile').choices(PRESET_NAMES).default('laptop'))
    .option('--steps <n>', 'profiled training steps after the warm-up', positiveInt, 10)
    .option('--warmup <n>', 'untimed steps first (and as many unwrapped steps to time the timers)', positiveInt, 3)
    .option('--json', 'print only the JSON line')
    .parse(process.argv)
    .opts<ProfileFlags>();

  const backend = await selectBackend('wasm');
  const recipe = PRESETS[flags.preset];
  const batch = TRAIN_DEFAULTS.batchSize;
  const size = recipe.imageSize;
  // The bench's model, optimizer and step (scripts/bench.ts), so the figures explain its img/s.
  const model = buildResNet({ inputSize: size, classes: 2, stages: recipe.stages, filters: recipe.filters, seed: 1 });
  const optimizer = tf.train.momentum(TRAIN_DEFAULTS.lr, TRAIN_DEFAULTS.momentum);
  const microBatch = chooseMicroBatch('wasm', batch, activationsPerImage(model), undefined);
  const x = new Float32Array(batch * size * size * 3).map(() => Math.random());
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 2);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () => trainStep(model, optimizer, variables, x, labels, batch, 2, microBatch);

  // Unwrapped steps first: the warm-up, then as many timed to see what the timers themselves cost.
  for (let i = 0; i < flags.warmup; i++) await step();
  const plainMs: number[] = [];
  for (let i = 0; i < flags.steps; i++) {
    const started = performance.now();
    await step();
    plainMs.push(performance.now() - started);
  }

  const engine = tf.engine() as unknown as EngineInternals;
  const profiler = new StepProfiler(engine);
  profiler.wrapKernels();
  profiler.wrapHeap((tf.backend() as unknown as { wasm: WasmModule }).wasm);
  profiler.wrapPhases(optimizer);
  const nextTensorId = () => (tf.engine().constructor as unknown as { nextTensorId: number }).nextTensorId;
  await step(); // one step with the wrappers in place before recording
  const stepMs: number[] = [];
  const tensorsBefore = nextTensorId();
  const liveBefore = tf.memory().numTensors;
  for (let i = 0; i < flags.steps; i++) {
    profiler.recording = true;
    const started = performance.now();
    await step();
    stepMs.push(performance.now() - started);
    profiler.recording = false;
  }
  const tensorsPerStep = (nextTensorId() - tensorsBefore) / flags.steps;
  const leaked = tf.memory().numTensors - liveBefore;
  optimizer.dispose();
  model.dispose();

  const steps = flags.steps;
  const totalMs = stepMs.reduce((a, b) => a + b, 0) / steps;
  const rows = [...profiler.kernels].map(([name, t]) => ({
    kernel: name,
    ms: t.ms / steps,
    calls: t.calls / steps,
    byPhase: Object.fromEntries(PHASES.map((p) => [p, t.byPhase[p] / steps])) as Record<Phase, number>,
  }));
  rows.sort((a, b) => b.ms - a.ms);
  const kernelMs = rows.reduce((a, r) => a + r.ms, 0);
  const kernelCalls = rows.reduce((a, r) => a + r.calls, 0);
  const phaseKernelMs = (phase: Phase) => rows.reduce((a, r) => a + r.byPhase[phase], 0);
  const wall = profiler.phaseWallMs;
  const otherWall = totalMs - (wall.forward + wall.backward + wall.optimizer) / steps;

  const result = {
    backend: backend.message,
    preset: flags.preset,
    batch,
    micro_batch: microBatch,
    steps,
    step_ms_mean: Number(totalMs.toFixed(1)),
    step_ms_median: Number(median(stepMs).toFixed(1)),
    step_ms_median_unwrapped: Number(median(plainMs).toFixed(1)),
    train_img_s_unwrapped: Number((batch / (median(plainMs) / 1000)).toFixed(1)),
    kernel_ms: Number(kernelMs.toFixed(1)),
    kernel_calls: Math.round(kernelCalls),
    outside_kernels_ms: Number((totalMs - kernelMs).toFixed(1)),
    malloc_free_ms: Number((profiler.mallocMs / steps).toFixed(1)),
    mallocs: Math.round(profiler.mallocs / steps),
    frees: Math.round(profiler.frees / steps),
    tensors_created: Math.round(tensorsPerStep),
    tensors_leaked: leaked,
  };
  if (flags.json) {
    console.log(JSON.stringify({ ...result, kernels: rows }));
    return;
  }
  const pct = (ms: number) => `${((100 * ms) / totalMs).toFixed(1)}%`;
  const f = (ms: number) => ms.toFixed(1);
  console.log(result.backend);
  console.log(
    `preset ${flags.preset} (${size}x${size}), batch ${batch} in passes of ${microBatch}: ${f(totalMs)} ms a step ` +
      `(mean of ${steps}; median ${f(median(stepMs))} ms with the timers, ${f(median(plainMs))} ms without: ` +
      `${result.train_img_s_unwrapped} img/s)`,
  );
  console.log(
    `kernels: ${f(kernelMs)} ms (${pct(kernelMs)}) in ${result.kernel_calls} calls; outside kernels ` +
      `${f(totalMs - kernelMs)} ms (${pct(totalMs - kernelMs)}); malloc/free from JS ${result.malloc_free_ms} ms ` +
      `(${result.mallocs} mallocs, ${result.frees} frees, inside kernel times); ${result.tensors_created} tensors created a step`,
  );
  console.log('\n| phase | wall ms | in kernels ms | outside kernels ms |');
  console.log('|---|---:|---:|---:|');
  for (const phase of ['forward', 'backward', 'optimizer'] as const) {
    const w = wall[phase] / steps;
    console.log(`| ${phase} | ${f(w)} | ${f(phaseKernelMs(phase))} | ${f(w - phaseKernelMs(phase))} |`);
  }
  console.log(
    `| rest (upload, loss read, accumulation) | ${f(otherWall)} | ${f(phaseKernelMs('other'))} | ${f(otherWall - phaseKernelMs('other'))} |`,
  );
  console.log(`| step | ${f(totalMs)} | ${f(kernelMs)} | ${f(totalMs - kernelMs)} |`);
  console.log('\n| kernel | ms a step | share | calls | forward | backward | optimizer | other |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows.filter((r) => r.ms >= 0.05)) {
    console.log(
      `| ${r.kernel} | ${f(r.ms)} | ${pct(r.ms)} | ${Math.round(r.calls)} | ${PHASES.map((p) => f(r.byPhase[p])).join(' | ')} |`,
    );
  }
  console.log(
    '\n| op (outermost kernel; grad X: the gradient functions of X) | kernel ms a step | calls | gradient wall ms | JS outside kernels ms |',
  );
  console.log('|---|---:|---:|---:|---:|');
  const ops = [...profiler.ops].sort((a, b) => b[1].kernelMs - a[1].kernelMs);
  for (const [op, t] of ops.filter(([, t]) => t.kernelMs / steps >= 0.05 || t.gradientWallMs / steps >= 0.05)) {
    const isGrad = op.startsWith('grad ') && t.gradientWallMs > 0;
    const wallCells = isGrad ? `${f(t.gradientWallMs / steps)} | ${f((t.gradientWallMs - t.kernelMs) / steps)}` : ' | ';
    console.log(`| ${op} | ${f(t.kernelMs / steps)} | ${Math.round(t.calls / steps)} | ${wallCells} |`);
  }
  console.log(JSON.stringify(result));
}

await runScript('profile-step', main);
