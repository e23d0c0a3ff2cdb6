// Writes the field app: a folder of static files that classifies a slide's cells in the browser, with the model,
// TensorFlow.js' own browser build and every script inside it (no CDN, nothing fetched from the network).
import { preprocessingOf } from '../input/preprocessing.js';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { UserError, describeFsError } from '../errors.js';
import { replaceFolder, sweepLeftovers, writeFileSynced } from '../io/atomic.js';
import { APP_MARKER, appMarkerText, assertApart, checkOutputFolder } from '../io/output-folder.js';
import { MAX_INPUT_PIXELS } from '../input/decode.js';
import { loadModel, METADATA_FILE, MODEL_FILE } from '../model/io.js';
import { DEFAULT_THRESHOLD } from '../config.js';
import { positiveIndexOf } from '../stats/positive-class.js';
import { DEFAULT_REVIEW_MARGIN } from '../stats/parasitemia.js';
import type { AppConfig } from './app-config.js';
import { browserModules, PAGE_ENTRY } from './browser-modules.js';
import { indexHtml } from './page.js';
import { serviceWorkerSource } from './service-worker.js';
import { APP_CSS } from './style.js';

// Marks a folder as written by `malaria app`, so rewriting it may replace it but no other folder is replaced.
export { APP_MARKER } from '../io/output-folder.js';
const TF_BROWSER_BUILD = '@tensorflow/tfjs/dist/tf.min.js';

export interface WrittenApp {
  outDir: string;
  /** Paths relative to outDir, '/'-separated. */
  files: string[];
  bytes: number;
  config: AppConfig;
}

type AppFiles = Map<string, string | Uint8Array>;

/** model.json, the weight files its manifest names, and metadata.json, under model/. */
async function modelFiles(modelDir: string): Promise<AppFiles> {
  const files: AppFiles = new Map();
  const modelJson = await fs.readFile(path.join(modelDir, MODEL_FILE), 'utf8');
  files.set(`model/${MODEL_FILE}`, modelJson);
  // loadModel has checked that the manifest's paths stay inside the folder.
  const manifest = (JSON.parse(modelJson) as { weightsManifest: { paths: string[] }[] }).weightsManifest;
  for (const relative of manifest.flatMap((group) => group.paths)) {
    files.set(`model/${path.posix.normalize(relative)}`, await fs.readFile(path.join(modelDir, relative)));
  }
  files.set(`model/${METADATA_FILE}`, await fs.readFile(path.join(modelDir, METADATA_FILE)));
  return files;
}

function versionOf(files: AppFiles, config: Omit<AppConfig, 'version'>): string {
  const hash = createHash('sha256');
  for (const name of [...files.keys()].sort())
    hash
      .update(`${name}\0`)
      .update(files.get(name) as string | Uint8Array)
      .update('\0');
  return hash.update(JSON.stringify(config)).digest('hex').slice(0, 12);
}

/** Every file of the app, keyed by its path in the app folder. */
async function appFiles(modelDir: string): Promise<{ files: AppFiles; config: AppConfig }> {
  // Loading the model checks the whole folder (files, weights, class count) before anything is written.
  const { model, metadata } = await loadModel(modelDir);
  model.dispose();
  if (metadata.classNames.length !== 2) {
    throw new UserError(
      `${modelDir}: the app screens two-class models (such as Parasitized / Uninfected), this one has ${metadata.classNames.length} classes`,
    );
  }
  const files = await modelFiles(modelDir);
  files.set('vendor/tf.min.js', await fs.readFile(createRequire(import.meta.url).resolve(TF_BROWSER_BUILD)));
  for (const [relative, code] of await browserModules()) files.set(`js/${relative}`, code);
  files.set('app.css', APP_CSS);
  const settings: Omit<AppConfig, 'version'> = {
    classNames: metadata.classNames,
    // loadModel has checked the positive class (saved, or Parasitized for older models).
    positiveIndex: positiveIndexOf(metadata),
    preprocessing: preprocessingOf(metadata),
    // loadModel has checked that a saved threshold is a probability.
    threshold: metadata.threshold ?? DEFAULT_THRESHOLD,
    thresholdSource: metadata.threshold === undefined ? 'default' : 'model',
    temperature: metadata.temperature ?? 1,
    reviewMargin: DEFAULT_REVIEW_MARGIN,
    maxInputPixels: MAX_INPUT_PIXELS,
    modelUrl: `model/${MODEL_FILE}`,
    modelCreated: typeof metadata.created === 'string' ? metadata.created : '',
  };
  const config: AppConfig = { ...settings, version: versionOf(files, settings) };
  files.set('index.html', indexHtml(config, `js/${PAGE_ENTRY}`));
  files.set('sw.js', serviceWorkerSource(config.version, [...files.keys()]));
  return { files, config };
}

/**
 * Writes the app for the model in `modelDir` into `outDir`: into a temporary folder beside it, swapped into place
 * (replaceFolder), so an interrupted run leaves the previous app or the new one, never a mix. Only a missing or
 * empty folder or an earlier app is replaced (src/io/output-folder.ts), and never one inside the model folder.
 */
export async function writeApp(options: { modelDir: string; outDir: string }): Promise<WrittenApp> {
  const outDir = path.resolve(options.outDir);
  const label = `--out ${options.outDir}`;
  await assertApart(
    [{ path: outDir, label }],
    [{ path: options.modelDir, label: `the model folder ${options.modelDir}` }],
  );
  await checkOutputFolder(outDir, 'app', label);
  // Only now, with --out checked: leftovers of killed runs are cleared, and an app a kill left moved aside is put
  // back, then checked like any other.
  const { restored } = await sweepLeftovers(path.dirname(outDir), [path.basename(outDir)]);
  if (restored.length > 0) await checkOutputFolder(outDir, 'app', label);
  const { files, config } = await appFiles(options.modelDir);
  let bytes = 0;
  const sizes: Record<string, number> = {};
  try {
    await replaceFolder(
      outDir,
      async (temp) => {
        for (const [relative, content] of files) {
          const target = path.join(temp, ...relative.split('/'));
          await fs.mkdir(path.dirname(target), { recursive: true });
          await writeFileSynced(target, content);
          sizes[relative] = typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
          bytes += sizes[relative];
        }
        // Every file with its size: what lets a later run tell this app from a folder someone added to.
        await writeFileSynced(path.join(temp, APP_MARKER), appMarkerText(sizes));
      },
      { beforeSwap: async () => void (await checkOutputFolder(outDir, 'app', label)) },
    );
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(
      describeFsError(err, outDir) ?? `cannot write the app to ${options.outDir}: ${(err as Error).message}`,
      1,
    );
  }
  return { outDir, files: [...files.keys()], bytes, config };
}
