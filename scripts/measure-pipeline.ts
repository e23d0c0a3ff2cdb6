// Manual measurement of the image pipeline (not run by the tests): images/s of augmented training batches for a
// first (cold, decoding) epoch and a second (cached) epoch, under different sharp and threadpool settings.
//
//   npm run build && UV_THREADPOOL_SIZE=4 node dist/scripts/measure-pipeline.js --data /work/shared/data/cell_images --count 3000
//
// UV_THREADPOOL_SIZE must be set in the environment: libuv reads it once, when its pool first starts.
// Options: --count N images (half per class), --offset K (skip the first K files of each class, to read files
// the OS has not cached yet), --size, --batch, --epochs, --prefetch, --inflight (decodes in flight),
// --sharp-concurrency N (libvips threads per image), --sharp-cache off, --input path|buffer (sharp reads the file
// itself, or fs.readFile first), --sequential (sequentialRead), --unlimited, --decoder project|custom,
// --step-ms N (block the main thread N ms per batch, as a synchronous tfjs training step does).
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { createBatchSource, type DecodeImage } from '../src/input/batches.js';
import { DecodeError, MAX_INPUT_PIXELS, resizeNearest } from '../src/input/decode.js';
import { preprocessingOf } from '../src/input/preprocessing.js';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string', default: '/work/shared/data/cell_images' },
    count: { type: 'string', default: '3000' },
    offset: { type: 'string', default: '0' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '32' },
    epochs: { type: 'string', default: '2' },
    prefetch: { type: 'string' },
    inflight: { type: 'string' },
    'sharp-concurrency': { type: 'string' },
    'sharp-cache': { type: 'string', default: 'on' },
    input: { type: 'string', default: 'path' },
    sequential: { type: 'boolean', default: false },
    unlimited: { type: 'boolean', default: false },
    decoder: { type: 'string', default: 'project' },
    'step-ms': { type: 'string', default: '0' },
  },
});

const optionalInt = (value: string | undefined): number | undefined =>
  value === undefined ? undefined : Number(value);

/** decodeRgb + resizeNearest with the sharp input options under test. */
function customDecoder(): DecodeImage {
  const readBuffer = args.input === 'buffer';
  return async (file, size) => {
    try {
      const input = readBuffer ? await fsp.readFile(file) : file;
      const { data, info } = await sharp(input, {
        limitInputPixels: MAX_INPUT_PIXELS,
        failOn: 'error',
        sequentialRead: args.sequential,
        unlimited: args.unlimited,
      })
        .toColourspace('srgb')
        .removeAlpha()
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
      return resizeNearest(
        { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height },
        size,
      );
    } catch (err) {
      throw new DecodeError(file, err instanceof Error ? err.message : String(err));
    }
  };
}

/** `<tmp>/<Class>/` with symlinks to `count / 2` files of each class, starting at `offset`. */
async function sampleLayout(dataDir: string, count: number, offset: number): Promise<string> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'measure-pipeline-'));
  for (const className of (await fsp.readdir(dataDir)).sort()) {
    const classDir = path.join(dataDir, className);
    if (!(await fsp.stat(classDir)).isDirectory()) continue;
    const names = (await fsp.readdir(classDir)).sort().slice(offset, offset + Math.ceil(count / 2));
    await fsp.mkdir(path.join(root, className));
    for (const name of names) await fsp.symlink(path.join(classDir, name), path.join(root, className, name));
  }
  return root;
}

/** Blocks the main thread like a synchronous training step (the decodes already handed to sharp go on). */
function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

async function main(): Promise<void> {
  const stepMs = Number(args['step-ms']);
  if (args['sharp-concurrency'] !== undefined) sharp.concurrency(Number(args['sharp-concurrency']));
  if (args['sharp-cache'] === 'off') sharp.cache(false);
  const dir = await sampleLayout(args.data, Number(args.count), Number(args.offset));
  try {
    const source = await createBatchSource({
      dir,
      preprocessing: preprocessingOf({ imageSize: Number(args.size) }),
      batchSize: Number(args.batch),
      augment: true,
      shuffle: true,
      seed: 42,
      prefetch: optionalInt(args.prefetch),
      decodesInFlight: optionalInt(args.inflight),
      decode: args.decoder === 'custom' ? customDecoder() : undefined,
    });
    const settings = [
      `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '(default 4)'}`,
      `sharp.concurrency=${sharp.concurrency()}`,
      `sharp.cache=${args['sharp-cache']}`,
      `decoder=${args.decoder}${args.decoder === 'custom' ? ` input=${args.input} sequential=${args.sequential} unlimited=${args.unlimited}` : ''}`,
      `inflight=${args.inflight ?? 'default'} prefetch=${args.prefetch ?? 'default'} step=${stepMs} ms`,
    ];
    console.log(`${source.files.length} images, ${os.cpus().length} cores; ${settings.join(', ')}`);
    for (let epoch = 0; epoch < Number(args.epochs); epoch++) {
      const started = process.hrtime.bigint();
      const cpuBefore = process.cpuUsage();
      let images = 0;
      for await (const batch of source.batches(epoch)) {
        images += batch.size;
        busyWait(stepMs);
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // CPU time of the whole process (main thread + threadpool): less sensitive than wall time to other
      // processes on a shared machine; 2 cores / (CPU per image) bounds the img/s of an idle 2-core machine.
      const cpu = process.cpuUsage(cpuBefore);
      const cpuMsPerImage = (cpu.user + cpu.system) / 1000 / images;
      const stats = source.stats;
      console.log(
        `epoch ${epoch}: ${images} images in ${seconds.toFixed(2)} s = ${Math.round(images / seconds)} img/s` +
          `, CPU ${cpuMsPerImage.toFixed(3)} ms/img (user ${(cpu.user / 1e6).toFixed(2)} s, sys ${(cpu.system / 1e6).toFixed(2)} s)` +
          ` (decodes ${stats.decodes}, cache hits ${stats.cacheHits}, skipped ${source.skipped.length})`,
      );
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

await main();
