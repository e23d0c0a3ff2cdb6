// The BatchSource of one split folder: list once, then per epoch decode (or take from the cache), augment and
// batch, producing a bounded number of batches ahead of the consumer while it trains.
import seedrandom from 'seedrandom';
import { DEFAULT_PREFETCH } from '../config.js';
import {
  affineMatrix,
  applyChannelGains,
  randomAffineParams,
  scaleToUnit,
  TUTORIAL_AUGMENTATION,
  warpAffine,
  type AugmentationRanges,
} from './augment.js';
import { listSplit, type SplitListing } from './split-folder.js';
import { DecodeError, decodeCell } from './decode.js';
import { preprocessingKey, type Preprocessing } from './preprocessing.js';
import { ImageCache, DEFAULT_CACHE_BYTES } from './image-cache.js';
import type { Batch, BatchSource, LabelledFile } from './types.js';

/** Decodes one file to a size x size x 3 uint8 image. Throw DecodeError for a bad file: it is skipped, not fatal. */
export type DecodeImage = (file: string, size: number) => Promise<Uint8Array>;

/**
 * Decodes handed to sharp at once (it runs them on libuv's threadpool) default to the whole prefetch window
 * (prefetch x batchSize). A training step blocks the main thread (tfjs runs ops synchronously), and only
 * decodes already handed to sharp make progress meanwhile: with only 8 in flight, two pool threads finish
 * them in ~5 ms (a decode costs ~1 ms of CPU) and then idle for the rest of the step. Memory stays small
 * (the compressed file and its ~50 KB of pixels per decode in flight).
 */
function defaultDecodesInFlight(prefetch: number, batchSize: number): number {
  return prefetch * batchSize;
}

/** A file left out of the epoch: not decodable (reported once, then skipped in every later epoch). */
export interface SkippedImage {
  path: string;
  reason: string;
}

/** Counters the tests and the measurement script read. */
export interface PipelineStats {
  /** Decode calls started (cache misses). */
  decodes: number;
  /** Images taken from the cache instead of decoded. */
  cacheHits: number;
  /** Most batches in production at once; never above `prefetch`. */
  peakBatchesInFlight: number;
  /** Most decode calls running at once; never above `decodesInFlight`. */
  peakDecodesInFlight: number;
}

export interface BatchPipelineOptions {
  /** How a cell becomes the network's input: its size, resize and stain step (the model's, when it has one). */
  preprocessing: Preprocessing;
  batchSize: number;
  /** Random ImageDataGenerator transform per image (training); off = resize and scale only (evaluation). */
  augment: boolean;
  /** Seeded shuffle per epoch (training); off = file order (evaluation). */
  shuffle: boolean;
  /** Epoch e's order and transforms depend only on (seed, e): a resumed run sees the same epochs. */
  seed: number | string;
  /** Byte budget of this source's own cache (default 1 GiB); ignored when `cache` is given. */
  cacheBytes?: number;
  /** A cache shared by several sources (for example training and validation under one budget). */
  cache?: ImageCache;
  /** Batches produced ahead of the consumer (default DEFAULT_PREFETCH). */
  prefetch?: number;
  /** Decodes in flight (default: prefetch x batchSize, see defaultDecodesInFlight). */
  decodesInFlight?: number;
  /** Called once per file that cannot be used (at listing or at its first failed decode). */
  onSkip?: (skipped: SkippedImage) => void;
  /** Augmentation ranges (default: the tutorial's). */
  augmentation?: Readonly<AugmentationRanges>;
  /** Replaces the decoder (tests count calls with it; the measurement script tries sharp settings). */
  decode?: DecodeImage;
}

export interface BatchSourceOptions extends BatchPipelineOptions {
  /** The split folder: `<dir>/<Class>/<image>`. */
  dir: string;
  /** Force the class order (evaluation: the class names saved with the model). */
  classNames?: readonly string[];
}

/** A BatchSource with what it left out and how its cache is doing. */
export interface ImageBatchSource extends BatchSource {
  /** Entries of the class folders that are not images (Thumbs.db...): never listed. */
  readonly nonImages: readonly string[];
  /**
   * Image files left out: rejected at listing (image name, non-image bytes) or failed to decode. A failed file
   * makes its batch one image short (a batch whose files all fail is not yielded), so an epoch can have fewer
   * images, and in the worst case fewer batches, than `files` and `batchesPerEpoch` say.
   */
  readonly skipped: readonly SkippedImage[];
  readonly stats: Readonly<PipelineStats>;
  readonly cache: ImageCache;
}

/** The order of epoch `epoch`: a Fisher-Yates shuffle seeded by (seed, epoch) only. */
export function shuffledOrder(count: number, seed: number | string, epoch: number): Uint32Array {
  const random = seedrandom(`malaria-shuffle:${seed}:${epoch}`);
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** Matrix entries the warp reads per image (the top two rows of the 3x3 inverse map). */
const MATRIX_STRIDE = 6;

/**
 * The inverse maps of every position of epoch `epoch`, drawn in position order from one stream seeded by
 * (seed, epoch): image i's transform depends on nothing else, not on which decode finishes first.
 */
function epochTransforms(
  count: number,
  size: number,
  seed: number | string,
  epoch: number,
  ranges = TUTORIAL_AUGMENTATION,
): Float64Array {
  const random = seedrandom(`malaria-augment:${seed}:${epoch}`);
  const matrices = new Float64Array(count * MATRIX_STRIDE);
  for (let p = 0; p < count; p++) {
    matrices.set(
      affineMatrix(randomAffineParams(random, size, ranges), size).subarray(0, MATRIX_STRIDE),
      p * MATRIX_STRIDE,
    );
  }
  return matrices;
}

/** A FIFO counting semaphore: the first decode asked for is the first started. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  peak = 0;

  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
    } else {
      // release() hands its slot straight to the first waiter, so `active` is unchanged.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.peak = Math.max(this.peak, this.active);
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

/**
 * Three channel factors per position of epoch `epoch`, from their own stream (seed, epoch), so turning them on
 * leaves every image's geometry as it was.
 */
export function epochChannelGains(count: number, seed: number | string, epoch: number, range: number): Float32Array {
  const random = seedrandom(`malaria-colour:${seed}:${epoch}`);
  const gains = new Float32Array(count * 3);
  for (let i = 0; i < gains.length; i++) gains[i] = 1 - range + 2 * range * random();
  return gains;
}

interface EpochPlan {
  /** File index at each position; undefined = file order. */
  order?: Uint32Array;
  /** MATRIX_STRIDE entries per position; undefined = no augmentation. */
  matrices?: Float64Array;
  /** Three channel factors per position; undefined = no colour augmentation. */
  gains?: Float32Array;
  /** Set when the consumer stops early: queued decodes of this epoch are not started. */
  cancelled: boolean;
}

function positiveInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new RangeError(`${what} must be a whole number greater than 0, got ${value}`);
  return value;
}

class DirectoryBatchSource implements ImageBatchSource {
  readonly classNames: readonly string[];
  readonly files: readonly LabelledFile[];
  readonly nonImages: readonly string[];
  readonly imageSize: number;
  readonly batchSize: number;
  readonly batchesPerEpoch: number;
  readonly cache: ImageCache;
  readonly skipped: SkippedImage[] = [];
  private readonly failed = new Set<string>();
  private readonly counters = { decodes: 0, cacheHits: 0, peakBatchesInFlight: 0 };
  private readonly limiter: Limiter;
  private readonly prefetch: number;
  private readonly decode: DecodeImage;
  /** "resize:stain:size:" (a balance with its reference), what a cached image depends on besides its file. */
  private readonly cachePrefix: string;
  private readonly pixels: number;

  constructor(
    listing: SplitListing,
    private readonly options: BatchPipelineOptions,
  ) {
    this.classNames = listing.classNames;
    this.files = listing.files;
    this.nonImages = listing.nonImages;
    this.imageSize = positiveInt(options.preprocessing.imageSize, 'image size');
    this.batchSize = positiveInt(options.batchSize, 'batch size');
    this.batchesPerEpoch = Math.ceil(this.files.length / this.batchSize);
    this.prefetch = positiveInt(options.prefetch ?? DEFAULT_PREFETCH, 'prefetch');
    this.limiter = new Limiter(
      positiveInt(
        options.decodesInFlight ?? defaultDecodesInFlight(this.prefetch, this.batchSize),
        'decodes in flight',
      ),
    );
    this.cache = options.cache ?? new ImageCache(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    const preprocessing = options.preprocessing;
    this.decode = options.decode ?? ((file) => decodeCell(file, preprocessing, file));
    this.cachePrefix = preprocessingKey(preprocessing);
    this.pixels = this.imageSize * this.imageSize * 3;
    for (const rejected of listing.rejected) this.skip(rejected.path, rejected.reason);
  }

  get stats(): Readonly<PipelineStats> {
    return { ...this.counters, peakDecodesInFlight: this.limiter.peak };
  }

  async *batches(epoch: number): AsyncGenerator<Batch> {
    if (!Number.isSafeInteger(epoch) || epoch < 0)
      throw new RangeError(`epoch must be a whole number, 0 or more, got ${epoch}`);
    const count = this.files.length;
    const plan: EpochPlan = {
      order: this.options.shuffle ? shuffledOrder(count, this.options.seed, epoch) : undefined,
      matrices: this.options.augment
        ? epochTransforms(count, this.imageSize, this.options.seed, epoch, this.options.augmentation)
        : undefined,
      gains:
        this.options.augment && (this.options.augmentation?.channelGainRange ?? 0) > 0
          ? epochChannelGains(count, this.options.seed, epoch, this.options.augmentation?.channelGainRange ?? 0)
          : undefined,
      cancelled: false,
    };
    // At most `prefetch` batches are in production; the one handed to the consumer is no longer ours.
    const ahead: Promise<Batch | undefined>[] = [];
    let next = 0;
    const startMore = (): void => {
      while (ahead.length < this.prefetch && next < this.batchesPerEpoch) {
        const batch = this.produceBatch(next++, plan);
        // If the consumer stops early nobody awaits this batch; its failure must not be an unhandled rejection.
        batch.catch(() => undefined);
        ahead.push(batch);
        this.counters.peakBatchesInFlight = Math.max(this.counters.peakBatchesInFlight, ahead.length);
      }
    };
    try {
      startMore();
      while (ahead.length > 0) {
        const batch = await ahead.shift()!;
        startMore();
        if (batch) yield batch;
      }
    } finally {
      plan.cancelled = true;
    }
  }

  private skip(file: string, reason: string): void {
    if (this.failed.has(file)) return;
    this.failed.add(file);
    const skipped = { path: file, reason };
    this.skipped.push(skipped);
    this.options.onSkip?.(skipped);
  }

  private cacheKey(file: string): string {
    return this.cachePrefix + file;
  }

  /** Writes the image of `position` into slot `slot` of `x`: augmented, or only scaled. */
  private place(image: Uint8Array, plan: EpochPlan, position: number, x: Float32Array, slot: number): void {
    const offset = slot * this.pixels;
    if (plan.matrices) {
      const at = position * MATRIX_STRIDE;
      warpAffine(image, this.imageSize, plan.matrices.subarray(at, at + MATRIX_STRIDE), x, offset);
      if (plan.gains) applyChannelGains(x, offset, this.pixels, plan.gains.subarray(position * 3, position * 3 + 3));
    } else {
      scaleToUnit(image, x, offset);
    }
  }

  private async produceBatch(index: number, plan: EpochPlan): Promise<Batch | undefined> {
    const start = index * this.batchSize;
    const count = Math.min(this.batchSize, this.files.length - start);
    const x = new Float32Array(count * this.pixels);
    const labels = new Int32Array(count);
    const kept = new Uint8Array(count);
    const decodes: Promise<void>[] = [];
    for (let slot = 0; slot < count; slot++) {
      const position = start + slot;
      const file = this.files[plan.order ? plan.order[position] : position];
      labels[slot] = file.label;
      const cached = this.cache.get(this.cacheKey(file.path));
      if (cached) {
        this.counters.cacheHits++;
        this.place(cached, plan, position, x, slot);
        kept[slot] = 1;
      } else if (!this.failed.has(file.path)) {
        decodes.push(this.decodeInto(file.path, plan, position, x, slot, kept));
      }
    }
    if (decodes.length > 0) await Promise.all(decodes);
    if (plan.cancelled) return undefined;
    return compact(x, labels, kept, this.pixels);
  }

  private async decodeInto(
    file: string,
    plan: EpochPlan,
    position: number,
    x: Float32Array,
    slot: number,
    kept: Uint8Array,
  ): Promise<void> {
    await this.limiter.acquire();
    let image: Uint8Array;
    try {
      if (plan.cancelled) return;
      this.counters.decodes++;
      image = await this.decode(file, this.imageSize);
    } catch (err) {
      if (err instanceof DecodeError) {
        // The message starts with the file's name, which the skipped entry already carries.
        const prefix = `${err.file}: `;
        this.skip(file, err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message);
        return;
      }
      throw err;
    } finally {
      this.limiter.release();
    }
    if (image.length !== this.pixels) {
      throw new Error(
        `decoder returned ${image.length} bytes for ${file}, expected ${this.pixels} (${this.imageSize}x${this.imageSize}x3)`,
      );
    }
    this.cache.set(this.cacheKey(file), image);
    if (plan.cancelled) return;
    this.place(image, plan, position, x, slot);
    kept[slot] = 1;
  }
}

/** Drops the slots of skipped files; undefined when none is left. */
function compact(x: Float32Array, labels: Int32Array, kept: Uint8Array, pixels: number): Batch | undefined {
  const count = kept.length;
  let size = 0;
  for (let slot = 0; slot < count; slot++) {
    if (!kept[slot]) continue;
    if (slot !== size) {
      x.copyWithin(size * pixels, slot * pixels, (slot + 1) * pixels);
      labels[size] = labels[slot];
    }
    size++;
  }
  if (size === 0) return undefined;
  if (size === count) return { x, labels, size };
  return { x: x.slice(0, size * pixels), labels: labels.slice(0, size), size };
}

/** A BatchSource over an existing listing (no file-system listing of its own). */
export function batchSourceFromListing(listing: SplitListing, options: BatchPipelineOptions): ImageBatchSource {
  return new DirectoryBatchSource(listing, options);
}

/**
 * Lists `<dir>/<Class>/` (Keras flow_from_directory) and returns its BatchSource. Missing folder, no class
 * folders or no images -> UserError. Training: { augment: true, shuffle: true }; evaluation: both false,
 * with `classNames` from the saved model.
 */
export async function createBatchSource(options: BatchSourceOptions): Promise<ImageBatchSource> {
  const listing = await listSplit(options.dir, { classNames: options.classNames });
  return batchSourceFromListing(listing, options);
}
