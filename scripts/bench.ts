// `npm run bench -- [--images <dir>] [--limit <n>] [--backend <b>] [--preset <name>] [--train-steps <n>] [--warmup <n>]
// [--peers] [--json]`
// Measures the data pipeline and the ResNet's training and inference speed on this machine (the tutorial's, or the
// one of a `train --preset`); with --peers
// it runs the peer baselines (../shared/bench) in the same run so the ratios compare like with like.
import { Command, Option } from 'commander';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { TRAIN_DEFAULTS } from '../src/config.js';
import { tf } from '../src/tf.js';
import {
  BACKEND_HELP,
  parseBackendChoice,
  selectBackend,
  type BackendChoice,
  type BackendName,
} from '../src/backends/select.js';
import { listSplit } from '../src/input/split-folder.js';
import { batchSourceFromListing } from '../src/input/batches.js';
import { activationsPerImage, chooseMicroBatch } from '../src/model/micro-batch.js';
import { buildResNet } from '../src/model/resnet.js';
import { trainStep } from '../src/model/train.js';
import { activeStepGuard } from '../src/backends/device-memory.js';
import { batchProbabilities } from '../src/model/inference.js';
import { withInferenceNetwork } from '../src/model/fold-batch-norm.js';
import { positiveInt } from '../src/commands/options.js';
import { PRESETS, PRESET_NAMES, type PresetName, type PresetSettings } from '../src/model/presets.js';
import { defaultPeersDir, peerThreads, runPresetPeer } from './peers.js';
import { preprocessingOf } from '../src/input/preprocessing.js';

interface BenchFlags {
  images: string;
  limit: number;
  backend: BackendChoice;
  preset: PresetName;
  trainSteps: number;
  warmup: number;
  microBatch?: number;
  peers?: boolean;
  peersDir: string;
  json?: boolean;
}

/**
 * Inference batches: untimed first, then timed (their median is the figure). Each takes well under a second, so
 * enough of them that a moment of load from another process on the machine does not move the median.
 */
const INFER_WARMUP = 2;
const INFER_TIMED = 11;
/** Timed batches with --tta, after one untimed (8 views each). */
const TTA_TIMED = 2;

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));

/** Augmented 64x64 training batches per second over two epochs: the first decodes, the second reads the cache. */
async function benchPipeline(flags: BenchFlags): Promise<{ first: number; cached: number; images: number }> {
  const listing = await listSplit(flags.images);
  listing.files = listing.files.slice(0, flags.limit);
  const source = batchSourceFromListing(listing, {
    preprocessing: preprocessingOf(PRESETS[flags.preset]),
    batchSize: TRAIN_DEFAULTS.batchSize,
    augment: true,
    shuffle: true,
    seed: 1,
  });
  const rates: number[] = [];
  for (let epoch = 0; epoch < 2; epoch++) {
    const started = performance.now();
    let images = 0;
    for await (const batch of source.batches(epoch)) {
      images += batch.size;
      sampleRss();
    }
    rates.push(images / ((performance.now() - started) / 1000));
  }
  return { first: rates[0], cached: rates[1], images: listing.files.length };
}

/** The preset's ResNet (the tutorial's: 64x64), batch 32: steady-state training and inference images per second. */
async function benchModel(
  flags: BenchFlags,
  backend: BackendName,
): Promise<{
  train: number;
  infer: number;
  inferTta: number;
  microBatch: number;
  gpuBytes?: number;
  gpuPeakBytes?: number;
}> {
  const recipe: PresetSettings = PRESETS[flags.preset];
  const batch = TRAIN_DEFAULTS.batchSize;
  const size = recipe.imageSize;
  const model = buildResNet({ inputSize: size, classes: 2, stages: recipe.stages, filters: recipe.filters, seed: 1 });
  const optimizer = tf.train.momentum(TRAIN_DEFAULTS.lr, TRAIN_DEFAULTS.momentum);
  let microBatch = chooseMicroBatch(backend, batch, activationsPerImage(model), flags.microBatch);
  const x = new Float32Array(batch * size * size * 3).map(() => Math.random());
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 2);

  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // Inference as evaluate and predict run it: the network with its batch norms folded, one batch at a time.
  const inferRates: number[] = [];
  const ttaRates: number[] = [];
  await withInferenceNetwork(model, async (network) => {
    for (let i = 0; i < INFER_WARMUP + INFER_TIMED; i++) {
      const started = performance.now();
      await batchProbabilities(tf, network, x, batch);
      if (i >= INFER_WARMUP) inferRates.push(batch / ((performance.now() - started) / 1000));
      sampleRss();
    }
    // Test-time augmentation (evaluate/predict --tta): 8 views per image through the same inference path.
    for (let i = 0; i < 1 + TTA_TIMED; i++) {
      const started = performance.now();
      await batchProbabilities(tf, network, x, batch, { tta: true });
      if (i > 0) ttaRates.push(batch / ((performance.now() - started) / 1000));
      sampleRss();
    }
  });
  const trainRates: number[] = [];
  const warmup = flags.warmup;
  // The most device memory tfjs holds while training (webgpu), as in a `train` process: without the buffers that
  // inference (8 views of 32 images with --tta) left pooled for reuse.
  activeStepGuard()?.releasePooled();
  activeStepGuard()?.resetPeak();
  for (let i = 0; i < warmup + flags.trainSteps; i++) {
    const started = performance.now();
    const step = await trainStep(model, optimizer, variables, x, labels, batch, 2, microBatch, 0, (info) =>
      console.error(`out of memory at micro-batch ${info.microBatch}: retrying with ${info.retryWith}`),
    );
    microBatch = step.microBatch;
    if (i >= warmup) trainRates.push(batch / ((performance.now() - started) / 1000));
    sampleRss();
    if (!flags.json) process.stderr.write(`train step ${i + 1}/${warmup + flags.trainSteps}\r`);
  }
  // webgpu keeps released buffers for reuse: what it holds after training is the device memory a run needs, and
  // the most it held while training (src/backends/webgpu-buffers.ts frees idle ones as it goes).
  const gpuBytes = (tf.memory() as { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU;
  const gpuPeakBytes = activeStepGuard()?.bytes().peak;
  optimizer.dispose();
  model.dispose();
  return {
    train: median(trainRates),
    infer: median(inferRates),
    inferTta: median(ttaRates),
    microBatch,
    gpuBytes,
    gpuPeakBytes,
  };
}

// The peak memory one training step of torch_resnet.py's model adds to its process (batch 32, 64x64, SGD with
// momentum): ru_maxrss before and after two steps (Linux counts it in KiB). The script builds its model at the top
// level, then measures speed: only its definitions, the text before `m = build()`, are run here.
const TORCH_STEP_MEMORY = `
import json, resource, sys, torch, torch.nn as nn
source = open(sys.argv[1]).read()
definitions = source[:source.index('m = build()')]
sys.argv = sys.argv[1:]
exec(definitions)
m = build(); opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
x = torch.rand(32, 3, 64, 64); y = torch.randint(0, 2, (32,)); lossf = nn.CrossEntropyLoss(); m.train()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(2):
    opt.zero_grad(); lossf(m(x), y).backward(); opt.step()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({'step_memory_mb': round((after - before) / 1024)}))
`;

/** Last JSON line a peer script prints. */
function runPeer(script: string, args: string[]): Record<string, number> | undefined {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  try {
    const command = script.endsWith('.py') ? [script, ...args] : ['-c', script, ...args];
    const out = execFileSync(python, command, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const last = out.trim().split('\n').pop() ?? '';
    return JSON.parse(last) as Record<string, number>;
  } catch (err) {
    const name = script.endsWith('.py') ? path.basename(script) : 'torch step memory';
    console.error(
      `peer ${name} failed: ${(err as Error).message.split('\n')[0]} (see ../shared/bench/README.md for its install line)`,
    );
    return undefined;
  }
}

async function main(): Promise<void> {
  const flags = new Command('bench')
    .option('--images <dir>', 'folder with one subfolder of images per class', 'malaria/sample')
    .option('--limit <n>', 'images for the pipeline measurement', positiveInt, 3000)
    .option('--backend <name>', BACKEND_HELP, parseBackendChoice, 'auto')
    .addOption(new Option('--preset <name>', 'whose ResNet to measure').choices(PRESET_NAMES).default('tutorial'))
    .option('--train-steps <n>', 'timed training steps after the warm-up steps', positiveInt, 5)
    .option('--warmup <n>', 'untimed training steps first (the first compiles kernels and shaders)', positiveInt, 2)
    .option('--micro-batch <n>', 'images per forward/backward pass in training', positiveInt)
    .option('--peers', 'also run the peer baselines in ../shared/bench (needs Debian python3-torch)')
    .option('--peers-dir <dir>', 'where the peer scripts are', defaultPeersDir())
    .option('--json', 'print only the JSON line')
    .parse(process.argv)
    .opts<BenchFlags>();

  const backend = await selectBackend(flags.backend);
  if (!flags.json) console.log(backend.message);
  const pipeline = await benchPipeline(flags);
  if (!flags.json)
    console.log(
      `pipeline: ${pipeline.first.toFixed(0)} img/s first epoch, ${pipeline.cached.toFixed(0)} img/s cached (${pipeline.images} images)`,
    );
  const model = await benchModel(flags, backend.name);
  if (!flags.json)
    console.log(
      `ResNet of preset ${flags.preset} (${PRESETS[flags.preset].imageSize}x${PRESETS[flags.preset].imageSize}) batch 32: train ${model.train.toFixed(2)} img/s (micro-batch ${model.microBatch}), inference ${model.infer.toFixed(2)} img/s, with --tta ${model.inferTta.toFixed(2)} img/s`,
    );

  const result: Record<string, unknown> = {
    backend: backend.name,
    device: backend.device,
    preset: flags.preset,
    images: pipeline.images,
    pipeline_first_epoch_img_s: Math.round(pipeline.first),
    pipeline_cached_img_s: Math.round(pipeline.cached),
    train_img_s: Number(model.train.toFixed(2)),
    train_micro_batch: model.microBatch,
    train_steps_timed: flags.trainSteps,
    infer_img_s: Number(model.infer.toFixed(2)),
    infer_tta_img_s: Number(model.inferTta.toFixed(2)),
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
    ...(model.gpuBytes === undefined ? {} : { gpu_allocated_mb: Math.round(model.gpuBytes / 2 ** 20) }),
    ...(model.gpuPeakBytes === undefined ? {} : { gpu_peak_mb: Math.round(model.gpuPeakBytes / 2 ** 20) }),
    uv_threadpool_size: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
  };
  if (flags.peers) {
    const pipelinePeers = runPeer(path.join(flags.peersDir, 'pipeline_peers.py'), [flags.images, String(flags.limit)]);
    const torch =
      flags.preset === 'tutorial' ? runPeer(path.join(flags.peersDir, 'torch_resnet.py'), ['2']) : undefined;
    const torchMemory =
      flags.preset === 'tutorial'
        ? runPeer(TORCH_STEP_MEMORY, [path.join(flags.peersDir, 'torch_resnet.py'), '2'])
        : undefined;
    if (pipelinePeers) {
      Object.assign(result, {
        peer_keras_like_img_s: pipelinePeers.keras_like_img_s,
        peer_torchvision_img_s: pipelinePeers.torchvision_img_s,
        ratio_first_epoch_vs_torchvision: Number((pipeline.first / pipelinePeers.torchvision_img_s).toFixed(2)),
        ratio_cached_vs_torchvision: Number((pipeline.cached / pipelinePeers.torchvision_img_s).toFixed(2)),
      });
    }
    // The torch peer is the tutorial's ResNet: a ratio only compares like with like for that preset.
    if (torch && flags.preset === 'tutorial') {
      Object.assign(result, {
        peer_torch_train_img_s: torch.train_img_s,
        peer_torch_infer_img_s: torch.infer_img_s,
        ratio_train_vs_torch: Number((model.train / torch.train_img_s).toFixed(2)),
        ratio_infer_vs_torch: Number((model.infer / torch.infer_img_s).toFixed(2)),
      });
    }
    // Any other preset: the same network in PyTorch (scripts/peers.ts), on as many threads as ours.
    const presetPeer =
      flags.preset === 'tutorial'
        ? undefined
        : runPresetPeer(flags.peersDir, PRESETS[flags.preset], peerThreads(backend.name), model);
    if (presetPeer) {
      Object.assign(result, presetPeer.fields);
      if (!flags.json) console.log(presetPeer.line);
    }
    if (torchMemory) {
      result.peer_torch_step_memory_mb = torchMemory.step_memory_mb;
      if (model.gpuPeakBytes !== undefined) {
        const gpuMb = model.gpuPeakBytes / 2 ** 20;
        result.ratio_gpu_memory_vs_torch = Number((gpuMb / torchMemory.step_memory_mb).toFixed(2));
      }
    }
  }
  console.log(JSON.stringify(result));
}

await main();
