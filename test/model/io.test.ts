import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { REFERENCE_CELL_COLOUR } from '../../src/input/stain.js';
import { loadHistory, loadMetadata, loadModel, saveHistory, saveModel } from '../../src/model/io.js';
import { expectUserError } from '../support/errors.js';
import { trackModels } from '../support/tensors.js';
import { withTempDir } from '../support/temp.js';
import {
  IMAGE_SIZE,
  maxAbsDifference,
  tinyMetadata,
  tinyResNet,
  trainedModel,
  weightValues,
} from '../support/models.js';
import { syntheticImages } from '../support/sources.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

const track = trackModels();
const metadata = tinyMetadata();

function predictAll(model: tf.LayersModel, x: Float32Array, n: number): Float32Array {
  return tf.tidy(
    () => (model.predict(tf.tensor4d(x, [n, IMAGE_SIZE, IMAGE_SIZE, 3])) as tf.Tensor).dataSync() as Float32Array,
  );
}

describe('saveModel / loadModel', () => {
  it('round-trips a trained model: same predictions, same metadata, standard layers layout', async () => {
    await withTempDir(async (dir) => {
      const { model, optimizer } = await trainedModel(5);
      track(model);
      optimizer.dispose();
      const { x } = syntheticImages(4, 77);
      const before = predictAll(model, x, 4);
      await saveModel(dir, model, metadata);

      expect((await fs.readdir(dir)).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
      const modelJson = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8'));
      expect(modelJson.format).toBe('layers-model');
      expect(modelJson.modelTopology.class_name).toBe('Model');
      expect(modelJson.weightsManifest).toHaveLength(1);
      expect(modelJson.weightsManifest[0].paths).toEqual(['./weights.bin']);
      // float32 weights: 4 bytes per parameter, batch-norm statistics included.
      expect((await fs.stat(path.join(dir, 'weights.bin'))).size).toBe(4 * model.countParams());

      const loaded = await loadModel(dir);
      track(loaded.model);
      expect(loaded.metadata).toEqual(metadata);
      expect(maxAbsDifference(weightValues(loaded.model), weightValues(model))).toBe(0);
      const after = predictAll(loaded.model, x, 4);
      expect(Array.from(after)).toEqual(Array.from(before));
    });
  });

  it('writes files that stock tf.loadLayersModel reads over HTTP, as a browser would', async () => {
    await withTempDir(async (dir) => {
      const model = track(tinyResNet(6));
      await saveModel(dir, model, metadata);
      const requested: string[] = [];
      const server = http.createServer((request, response) => {
        const name = path.basename(request.url ?? '');
        requested.push(name);
        fs.readFile(path.join(dir, name)).then(
          (body) => response.end(body),
          () => {
            response.statusCode = 404;
            response.end();
          },
        );
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        const loaded = track(await tf.loadLayersModel(`http://127.0.0.1:${port}/model.json`));
        const { x } = syntheticImages(2, 8);
        expect(Array.from(predictAll(loaded, x, 2))).toEqual(Array.from(predictAll(model, x, 2)));
        expect(requested).toEqual(['model.json', 'weights.bin']);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });

  it('rejects folders that are not ours with one line naming the problem', async () => {
    await withTempDir(async (dir) => {
      await expectUserError(loadModel(path.join(dir, 'missing')), /not found/);
      await fs.writeFile(path.join(dir, 'file.txt'), 'x');
      await expectUserError(loadModel(path.join(dir, 'file.txt')), /not a folder/);
      await expectUserError(loadModel(dir), /has no model\.json; point it at a folder written by `malaria train`/);

      await fs.writeFile(path.join(dir, 'model.json'), '{ not json');
      await expectUserError(loadModel(dir), /model\.json is not valid JSON/);
      await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify({ hello: 'world' }));
      await expectUserError(loadModel(dir), /is not a TensorFlow\.js model/);
      const graphModel = { format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] };
      await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(graphModel));
      await expectUserError(loadModel(dir), /is a graph-model model, not a layers model/);

      // A genuine layers model without our metadata.json.
      await saveModel(dir, track(tinyResNet(7)), metadata);
      await fs.rm(path.join(dir, 'metadata.json'));
      await expectUserError(loadModel(dir), /has no metadata\.json/);
      await fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify({ imageSize: 32, channels: 3 }));
      await expectUserError(loadModel(dir), /lacks classNames/);
      await fs.writeFile(
        path.join(dir, 'metadata.json'),
        JSON.stringify({ ...metadata, classNames: ['Parasitized', 'b', 'c'] }),
      );
      await expectUserError(loadModel(dir), /2 outputs but metadata\.json names 3 classes/);
      await fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify({ ...metadata, resize: 'bicubic' }));
      await expectUserError(loadModel(dir), /unknown resize method "bicubic" \(known: nearest, area\)/);
      await fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify({ ...metadata, stain: 'grey' }));
      await expectUserError(loadModel(dir), /unknown stain method "grey" \(known: keep, balance\)/);
      // Older models say nothing of the resize or the stain: they were trained with nearest sampling, colours kept.
      const { resize: _omitted, stain: _alsoOmitted, ...older } = metadata;
      await fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify(older));
      const loaded = await loadModel(dir);
      track(loaded.model);
      expect(loaded.metadata.resize).toBe('nearest');
      expect(loaded.metadata.stain).toBe('keep');
      await fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify(metadata));
      await fs.rm(path.join(dir, 'weights.bin'));
      await expectUserError(loadModel(dir), /weights\.bin: not found; the model folder is incomplete/);
    });
  });
});

describe('metadata.json', () => {
  /** loadMetadata of a metadata.json holding `value`. */
  async function load(dir: string, value: unknown) {
    await fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify(value));
    return loadMetadata(dir);
  }
  const file = (dir: string) => path.join(dir, 'metadata.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  it('refuses what a model of ours cannot be used with, naming the field and the file in one line', async () => {
    await withTempDir(async (dir) => {
      const f = file(dir);
      await expectUserError(load(dir, { ...metadata, channels: 4 }), new RegExp(`^${f} has channels 4; .*3 \\(RGB\\)`));
      await expectUserError(load(dir, { ...metadata, channels: 1 }), new RegExp(`^${f} has channels 1;`));
      await expectUserError(
        load(dir, { ...metadata, scaling: 'x/127.5-1' }),
        new RegExp(`^${f} has scaling "x/127.5-1";`),
      );
      const { scaling: _none, ...unscaled } = metadata;
      await expectUserError(load(dir, unscaled), new RegExp(`^${f} has scaling undefined;`));
      await expectUserError(load(dir, { ...metadata, classNames: ['a', 'a'] }), /lacks classNames/);
      for (const reference of [[186, 155], [186, 155, 0], [186, 155, 300], ['186', 155, 165], 'pink', null]) {
        await expectUserError(
          load(dir, { ...metadata, stain: 'balance', stainReference: reference }),
          new RegExp(`^${f} has a stainReference that is not three channel values above 0 and at most 255`),
        );
      }
      await expectUserError(
        load(dir, { ...metadata, stain: 'keep', stainReference: [150, 150, 150] }),
        new RegExp(`^${f} has a stainReference but stain "keep"; a reference goes with stain "balance"`),
      );
      await expectUserError(
        load(dir, { ...metadata, positiveClass: 'Sick' }),
        new RegExp(`^${f} has a positiveClass "Sick" that is not one of its classNames \\(Parasitized, Uninfected\\)`),
      );
    });
  });

  it('keeps the positive class and the stain reference it was saved with', async () => {
    await withTempDir(async (dir) => {
      const saved = tinyMetadata({
        classNames: ['Healthy', 'Sick'],
        positiveClass: 'Sick',
        stain: 'balance',
        stainReference: [150, 120.5, 140],
      });
      await saveModel(dir, track(tinyResNet(8)), saved);
      const onDisk = JSON.parse(await fs.readFile(path.join(dir, 'metadata.json'), 'utf8'));
      expect(onDisk).toMatchObject({ positiveClass: 'Sick', stainReference: [150, 120.5, 140] });
      expect(await loadMetadata(dir)).toEqual(saved);
      // The first class is positive only when named so.
      expect((await load(dir, { ...saved, positiveClass: 'Healthy' })).positiveClass).toBe('Healthy');
    });
  });

  it('gives older models what they were trained with, and refuses to guess their positive class', async () => {
    await withTempDir(async (dir) => {
      const { positiveClass: _unsaid, ...older } = metadata;
      // No positiveClass: Parasitized, wherever it stands among the classes.
      expect((await load(dir, older)).positiveClass).toBe('Parasitized');
      expect((await load(dir, { ...older, classNames: ['Uninfected', 'Parasitized'] })).positiveClass).toBe(
        'Parasitized',
      );
      // More than two classes: no screening, so no positive class.
      expect((await load(dir, { ...older, classNames: ['a', 'b', 'c'] })).positiveClass).toBeUndefined();
      // Older versions took the first class of these; the fix is one field.
      await expectUserError(
        load(dir, { ...older, classNames: ['Healthy', 'Sick'] }),
        new RegExp(
          `^${file(dir)} does not say which class the model screens for \\(no positiveClass, and neither class is Parasitized\\); add "positiveClass": "Healthy" or "Sick" to it`,
        ),
      );
      // stain balance without a reference: the constant those versions balanced to.
      expect((await load(dir, { ...older, stain: 'balance' })).stainReference).toEqual([...REFERENCE_CELL_COLOUR]);
      expect((await load(dir, older)).stainReference).toBeUndefined();
    });
  });
});

describe('history', () => {
  it('round-trips history.json', async () => {
    await withTempDir(async (dir) => {
      const history = {
        loss: [0.7, 0.5],
        accuracy: [0.5, 0.75],
        val_loss: [0.6, 0.4],
        val_accuracy: [0.5, 1],
        lr: [0.1, 0.05],
      };
      await saveHistory(dir, history);
      expect(await loadHistory(dir)).toEqual(history);
      await fs.writeFile(path.join(dir, 'history.json'), JSON.stringify({ loss: [] }));
      await expectUserError(loadHistory(dir), /lacks the loss\/accuracy\/val_loss\/val_accuracy\/lr arrays/);
    });
  });
});

describe('metadata.json of a model trained with --exclude', () => {
  it('keeps the list’s sha256 and count, and refuses an excluded field of another shape', async () => {
    await withTempDir(async (dir) => {
      const write = (value: unknown) => fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify(value));
      const excluded = { sha256: 'ab'.repeat(32), count: 3 };
      await write({ ...metadata, excluded });
      expect((await loadMetadata(dir)).excluded).toEqual(excluded);
      for (const bad of [{ sha256: 'ab', count: 3 }, { sha256: 'ab'.repeat(32), count: -1 }, 'list.csv']) {
        await write({ ...metadata, excluded: bad });
        await expectUserError(loadMetadata(dir), /has an excluded that is not \{"sha256"/);
      }
    });
  });
});
