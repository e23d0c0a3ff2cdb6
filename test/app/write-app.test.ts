import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import seedrandom from 'seedrandom';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../../src/backends/select.js';
import { UserError } from '../../src/errors.js';
import { scaleToUnit } from '../../src/input/augment.js';
import { resizeNearest } from '../../src/input/resize.js';
import { REFERENCE_CELL_COLOUR } from '../../src/input/stain.js';
import type { AppConfig } from '../../src/app/app-config.js';
import { importsOf } from '../../src/app/browser-modules.js';
import { APP_MARKER, writeApp } from '../../src/app/write-app.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { writeTinyModel } from '../support/models.js';

/** The config index.html embeds for the page. */
async function embeddedConfig(appDir: string): Promise<AppConfig> {
  const html = await fs.readFile(path.join(appDir, 'index.html'), 'utf8');
  const json = /<script type="application\/json" id="config">(.*?)<\/script>/s.exec(html)?.[1];
  if (!json) throw new Error('index.html embeds no config');
  return JSON.parse(json) as AppConfig;
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), relative)));
    else out.push(relative);
  }
  return out.sort();
}

describe('writeApp', () => {
  let work: string;
  let modelDir: string;

  beforeAll(async () => {
    await selectBackend('cpu');
  });
  beforeEach(async () => {
    work = await makeTempDir('malaria-app-write-');
    modelDir = path.join(work, 'model');
    (await writeTinyModel(modelDir)).dispose();
  });
  afterEach(async () => removeDir(work));

  it('writes the page, its scripts, TensorFlow.js from node_modules and the model files, unchanged', async () => {
    const outDir = path.join(work, 'app');
    const app = await writeApp({ modelDir, outDir });
    const written = await listFiles(outDir);
    expect(written).toEqual([...app.files, APP_MARKER].sort());
    for (const name of [
      'index.html',
      'app.css',
      'sw.js',
      'vendor/tf.min.js',
      'js/app/browser/main.js',
      'js/input/resize.js',
      'js/input/stain.js',
      'js/stats/parasitemia.js',
    ]) {
      expect(written).toContain(name);
    }
    const tfBuild = createRequire(import.meta.url).resolve('@tensorflow/tfjs/dist/tf.min.js');
    expect(await fs.readFile(path.join(outDir, 'vendor/tf.min.js'))).toEqual(await fs.readFile(tfBuild));
    for (const name of ['model.json', 'weights.bin', 'metadata.json']) {
      expect(await fs.readFile(path.join(outDir, 'model', name)), name).toEqual(
        await fs.readFile(path.join(modelDir, name)),
      );
    }
    const sizes = await Promise.all(written.map(async (f) => (await fs.stat(path.join(outDir, f))).size));
    expect(app.bytes).toBe(sizes.reduce((a, b) => a + b, 0) - (await fs.stat(path.join(outDir, APP_MARKER))).size);
  });

  it('ships the resize and scaling code training uses, as ES modules a browser can load', async () => {
    const outDir = path.join(work, 'app');
    await writeApp({ modelDir, outDir });
    const shipped = (await import(pathToFileURL(path.join(outDir, 'js/input/resize.js')).href)) as {
      resizeNearest: typeof resizeNearest;
    };
    const shippedScale = (await import(pathToFileURL(path.join(outDir, 'js/input/augment.js')).href)) as {
      scaleToUnit: typeof scaleToUnit;
    };
    const random = seedrandom('resize');
    const image = {
      width: 57,
      height: 43,
      data: Uint8Array.from({ length: 57 * 43 * 3 }, () => Math.floor(random() * 256)),
    };
    for (const size of [16, 32, 64, 100]) {
      const expected = resizeNearest(image, size);
      expect(shipped.resizeNearest(image, size)).toEqual(expected);
      const [mine, theirs] = [new Float32Array(expected.length), new Float32Array(expected.length)];
      scaleToUnit(expected, mine);
      shippedScale.scaleToUnit(expected, theirs);
      expect(theirs).toEqual(mine);
    }
  });

  it('ships only modules whose imports resolve inside the app, and nothing that reaches the network', async () => {
    const outDir = path.join(work, 'app');
    const app = await writeApp({ modelDir, outDir });
    const modules = app.files.filter((f) => f.startsWith('js/'));
    expect(modules.length).toBeGreaterThan(5);
    for (const module of modules) {
      const code = await fs.readFile(path.join(outDir, module), 'utf8');
      for (const specifier of importsOf(module, code)) {
        expect(app.files, `${module} imports ${specifier}`).toContain(
          path.posix.join(path.posix.dirname(module), specifier),
        );
      }
      expect(code, module).not.toMatch(/sourceMappingURL/);
    }
    for (const file of ['index.html', 'app.css', 'sw.js', ...modules]) {
      expect(await fs.readFile(path.join(outDir, file), 'utf8'), file).not.toMatch(/https?:\/\//);
    }
  });

  it('caches every file of the app in the service worker, under a version that follows the contents', async () => {
    const outDir = path.join(work, 'app');
    const first = await writeApp({ modelDir, outDir });
    const sw = await fs.readFile(path.join(outDir, 'sw.js'), 'utf8');
    const cached = JSON.parse(/const FILES = (\[.*\]);/.exec(sw)?.[1] ?? '[]') as string[];
    expect(cached.sort()).toEqual(['./', ...first.files.filter((f) => f !== 'sw.js')].sort());
    expect(sw).toContain(first.config.version);
    expect((await writeApp({ modelDir, outDir })).config.version).toBe(first.config.version);
    (await writeTinyModel(modelDir, [], { created: '2026-02-02T00:00:00.000Z' })).dispose();
    expect((await writeApp({ modelDir, outDir })).config.version).not.toBe(first.config.version);
  });

  it('starts from the threshold saved with the model, else 0.5, finds the positive class by name, and takes its temperature', async () => {
    const outDir = path.join(work, 'app');
    const defaults = await embeddedConfig((await writeApp({ modelDir, outDir })).outDir);
    expect(defaults).toMatchObject({
      threshold: 0.5,
      thresholdSource: 'default',
      positiveIndex: 0,
      preprocessing: { imageSize: 32 },
      classNames: ['Parasitized', 'Uninfected'],
      temperature: 1,
    });
    (
      await writeTinyModel(modelDir, [], {
        threshold: 0.27,
        classNames: ['Uninfected', 'Parasitized'],
        temperature: 1.8,
      })
    ).dispose();
    const saved = await embeddedConfig((await writeApp({ modelDir, outDir })).outDir);
    expect(saved).toMatchObject({ threshold: 0.27, thresholdSource: 'model', positiveIndex: 1, temperature: 1.8 });
  });

  it("screens for the model's positive class and prepares cells with its saved stain reference", async () => {
    const outDir = path.join(work, 'app');
    (
      await writeTinyModel(modelDir, [], {
        classNames: ['Healthy', 'Sick'],
        positiveClass: 'Sick',
        stain: 'balance',
        stainReference: [150, 120.5, 140],
      })
    ).dispose();
    const app = await writeApp({ modelDir, outDir });
    const config = await embeddedConfig(app.outDir);
    expect(config).toMatchObject({
      positiveIndex: 1,
      preprocessing: { stain: 'balance', stainReference: [150, 120.5, 140] },
    });
    const html = await fs.readFile(path.join(outDir, 'index.html'), 'utf8');
    expect(html).toContain('Threshold: Sick when P ≥');
    // The model folder inside the app carries them too.
    const copied = JSON.parse(await fs.readFile(path.join(outDir, 'model', 'metadata.json'), 'utf8'));
    expect(copied).toMatchObject({ positiveClass: 'Sick', stainReference: [150, 120.5, 140] });

    // An older model: balanced to the constant of its version, and said so in the config.
    const older = JSON.parse(await fs.readFile(path.join(modelDir, 'metadata.json'), 'utf8'));
    delete older.stainReference;
    older.classNames = ['Parasitized', 'Uninfected'];
    delete older.positiveClass;
    await fs.writeFile(path.join(modelDir, 'metadata.json'), JSON.stringify(older));
    const olderConfig = await embeddedConfig((await writeApp({ modelDir, outDir })).outDir);
    expect(olderConfig).toMatchObject({
      positiveIndex: 0,
      preprocessing: { stainReference: [...REFERENCE_CELL_COLOUR] },
    });
  });

  it('replaces an earlier app completely and leaves no temporary folders', async () => {
    const outDir = path.join(work, 'app');
    await writeApp({ modelDir, outDir });
    // A file an older version of the app had (and listed in its marker).
    await fs.writeFile(path.join(outDir, 'js', 'stale.js'), 'from an older app');
    const marker = await fs.readFile(path.join(outDir, APP_MARKER), 'utf8');
    const [first, listing] = marker.split('\n');
    const { files } = JSON.parse(listing) as { files: Record<string, number> };
    files['js/stale.js'] = 'from an older app'.length;
    await fs.writeFile(path.join(outDir, APP_MARKER), `${first}\n${JSON.stringify({ files })}\n`);
    await writeApp({ modelDir, outDir });
    expect(await listFiles(outDir)).not.toContain('js/stale.js');
    expect((await fs.readdir(work)).sort()).toEqual(['app', 'model']);
  });

  it('refuses to replace a folder it did not write, an app someone added files to, or one inside the model folder', async () => {
    const outDir = path.join(work, 'mine');
    await fs.mkdir(outDir);
    await fs.writeFile(path.join(outDir, 'notes.txt'), 'keep me');
    await expect(writeApp({ modelDir, outDir })).rejects.toThrow(
      /mine holds files that are not a web app written by `malaria app` \(it has no \.malaria-app marker\)/,
    );
    expect(await listFiles(outDir)).toEqual(['notes.txt']);

    const app = path.join(work, 'app-with-slides');
    await writeApp({ modelDir, outDir: app });
    await fs.writeFile(path.join(app, 'slide-7.png'), 'a slide');
    await expect(writeApp({ modelDir, outDir: app })).rejects.toThrow(/\(slide-7\.png is not part of the app\)/);
    expect(await fs.readFile(path.join(app, 'slide-7.png'), 'utf8')).toBe('a slide');

    await expect(writeApp({ modelDir, outDir: path.join(modelDir, 'app') })).rejects.toThrow(
      /lies inside the model folder/,
    );
    await expect(writeApp({ modelDir, outDir: work })).rejects.toThrow(/contains the model folder/);
  });

  it('its marker lists every file it wrote with its size; a file added or swapped at any depth makes the folder not ours', async () => {
    const outDir = path.join(work, 'app');
    const app = await writeApp({ modelDir, outDir });
    const listing = (await fs.readFile(path.join(outDir, APP_MARKER), 'utf8')).split('\n')[1];
    const { files } = JSON.parse(listing) as { files: Record<string, number> };
    expect(Object.keys(files).sort()).toEqual([...app.files].sort());
    for (const file of app.files) expect(files[file], file).toBe((await fs.stat(path.join(outDir, file))).size);

    for (const [change, reason] of [
      [
        () => fs.writeFile(path.join(outDir, 'model', 'slide-7.png'), 'a slide'),
        /\(model\/slide-7\.png is not part of the app\)/,
      ],
      [
        () => fs.writeFile(path.join(outDir, 'app.css'), 'body { color: red }'),
        /\(app\.css is not the file `malaria app` wrote/,
      ],
    ] as [() => Promise<void>, RegExp][]) {
      await writeApp({ modelDir, outDir });
      await change();
      const before = await listFiles(outDir);
      await expect(writeApp({ modelDir, outDir })).rejects.toThrow(reason);
      expect(await listFiles(outDir)).toEqual(before);
      await fs.rm(outDir, { recursive: true });
    }
  });

  it('checks --out again right before the swap: a file someone put there while it wrote stops it, kept', async () => {
    const outDir = path.join(work, 'app');
    await writeApp({ modelDir, outDir });
    const slide = path.join(outDir, 'slide-7.png');
    const open = fs.open.bind(fs);
    const spy = vi.spyOn(fs, 'open').mockImplementation(async (file, ...rest) => {
      if (String(file).includes(`${path.sep}.app.malaria-tmp-`))
        await fs.writeFile(slide, 'a slide').catch(() => undefined);
      return open(file, ...rest);
    });
    try {
      await expect(writeApp({ modelDir, outDir })).rejects.toThrow(/\(slide-7\.png is not part of the app\)/);
    } finally {
      spy.mockRestore();
    }
    expect(await fs.readFile(slide, 'utf8')).toBe('a slide');
    expect((await fs.readdir(work)).sort()).toEqual(['app', 'model']);
  });

  it('refuses a missing model folder, a model of more than two classes and a bad saved threshold, writing nothing', async () => {
    const outDir = path.join(work, 'app');
    await expect(writeApp({ modelDir: path.join(work, 'nowhere'), outDir })).rejects.toBeInstanceOf(UserError);
    (await writeTinyModel(modelDir, [], { classNames: ['Parasitized', 'Uninfected', 'Other'] })).dispose();
    await expect(writeApp({ modelDir, outDir })).rejects.toThrow(/two-class models.*3 classes/);
    (await writeTinyModel(modelDir, [], { threshold: 1.5 })).dispose();
    await expect(writeApp({ modelDir, outDir })).rejects.toThrow(/threshold/);
    expect(await fs.readdir(work)).toEqual(['model']);
  });
});
