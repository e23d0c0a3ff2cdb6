// The defaults the Keras tutorial kept in config.py, plus its training settings. Flags override them.
export const DATASET_DEFAULTS = {
  /** Where the raw class folders (Parasitized/, Uninfected/) live. */
  input: 'malaria/cell_images',
  /** Base folder that receives the split folders and splits.csv. */
  base: 'malaria',
  splits: { train: 'training', val: 'validation', test: 'testing' },
  /** Fraction of all images that go to training (the rest is testing). */
  trainSplit: 0.8,
  /** Fraction of the training part that is held out for validation. */
  valSplit: 0.1,
  seed: 42,
} as const;

export const TRAIN_DEFAULTS = {
  imageSize: 64,
  /** flow_from_directory's default interpolation, nearest-neighbour: the tutorial's. */
  resize: 'nearest',
  /** The tutorial's colours, as the slide gave them. */
  stain: 'keep',
  batchSize: 32,
  epochs: 50,
  lr: 0.1,
  momentum: 0.9,
  l2: 5e-4,
  stages: [3, 4, 6],
  filters: [64, 128, 256, 512],
  /** The tutorial's schedule, without the extras `train` offers: linear decay, no warm-up, plain targets, last weights. */
  schedule: 'linear',
  warmup: 0,
  labelSmoothing: 0,
  ema: 0,
  /** ImageDataGenerator's rotation_range in the tutorial: degrees, uniform in [-20, 20]. */
  rotation: 20,
  /** Not the tutorial's: random per-channel factors in [1 - color, 1 + color] for the training images; 0 is off. */
  color: 0,
  modelDir: 'malaria/model',
  /** Under malaria/ like every other default output, never in the folder the command runs from. */
  plot: 'malaria/plot.png',
} as const;

export const DOWNLOAD_DEFAULTS = {
  url: 'https://data.lhncbc.nlm.nih.gov/public/Malaria/cell_images.zip',
  dir: 'malaria',
  /** Images in the official NIH archive: 13,779 per class. */
  expectedImages: 27_558,
} as const;

/** `app`: where it writes the web app, and where `--serve` listens (this machine only). */
export const APP_DEFAULTS = { out: 'malaria/app', port: 8080, host: '127.0.0.1' } as const;

/** The decision threshold on P(Parasitized) when neither a flag nor the model's metadata.json gives one. */
export const DEFAULT_THRESHOLD = 0.5;

/** Batches produced ahead of the one the consumer holds: enough to hide decode jitter, few enough to bound memory. */
export const DEFAULT_PREFETCH = 3;

export type SplitName = (typeof DATASET_DEFAULTS.splits)[keyof typeof DATASET_DEFAULTS.splits];
