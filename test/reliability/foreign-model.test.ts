// Model folders that are not ours (another tool's, damaged, or not a model at all) given to every command that
// reads one: one line naming the folder's problem and the fix, exit code 2, no stack trace, nothing written.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { selectBackend } from '../../src/backends/select.js';
import { expectOneErrorLine, runChild, runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { copySample, samplePaths } from '../support/sample.js';
import { brightnessMetadata, saveBrightnessModel } from '../support/models.js';

let dir: string;
let image: string;
const data = () => path.join(dir, 'data');
const folder = (name: string) => path.join(dir, 'models', name);

/** What tensorflowjs_converter writes for a Keras .h5 model: the topology wrapped in model_config, sharded weights. */
async function writeKerasConverted(target: string): Promise<void> {
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 2, activation: 'softmax' })] });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
  const { class_name, config } = artifacts!.modelTopology as { class_name: string; config: unknown };
  await fsp.mkdir(target, { recursive: true });
  await fsp.writeFile(
    path.join(target, 'model.json'),
    JSON.stringify({
      format: 'layers-model',
      generatedBy: 'keras v2.15.0',
      convertedBy: 'TensorFlow.js Converter v4.22.0',
      modelTopology: {
        keras_version: '2.15.0',
        backend: 'tensorflow',
        model_config: { class_name, config },
        training_config: { loss: 'categorical_crossentropy' },
      },
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: artifacts!.weightSpecs }],
    }),
  );
  await fsp.writeFile(
    path.join(target, 'group1-shard1of1.bin'),
    new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts!.weightData!)),
  );
}

/** Folder name -> what the one line must say about it. */
const FOREIGN: [name: string, pattern: RegExp][] = [
  ['keras-converted', /keras-converted has no metadata\.json; point it at a folder written by `malaria train`$/],
  [
    'keras-with-metadata',
    /keras-with-metadata: the model takes inputs of shape \[4\], not the 32x32x3 images metadata\.json names; point it at a folder written by `malaria train`$/,
  ],
  [
    'graph-model',
    /graph-model\/model\.json is a graph-model model, not a layers model; point it at a folder written by `malaria train`$/,
  ],
  [
    'package-json',
    /package-json\/model\.json is not a TensorFlow\.js model; point it at a folder written by `malaria train`$/,
  ],
  ['binary', /binary\/model\.json is not valid JSON; point it at a folder written by `malaria train`$/],
  ['pytorch', /pytorch has no model\.json; point it at a folder written by `malaria train`$/],
  // tfjs itself throws on these two; the loader translates its message.
  ['truncated-weights', /truncated-weights\/model\.json could not be loaded \(.+\); train the model again$/],
  ['unknown-layer', /unknown-layer\/model\.json could not be loaded \(.*MagicLayer.*\); train the model again$/],
  ['a-file', /a-file is not a folder; point it at a folder written by `malaria train`$/],
];

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await makeTempDir('malaria-foreign-');
  [image] = await samplePaths('Parasitized', 1);
  await copySample(path.join(data(), 'testing'), { Parasitized: 1 });

  await writeKerasConverted(folder('keras-converted'));
  await writeKerasConverted(folder('keras-with-metadata'));
  await fsp.writeFile(path.join(folder('keras-with-metadata'), 'metadata.json'), JSON.stringify(brightnessMetadata));
  await fsp.mkdir(folder('graph-model'));
  // A TensorFlow SavedModel converted to a graph model.
  const graph = {
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: { node: [{ name: 'x', op: 'Placeholder' }], library: {}, versions: { producer: 1286 } },
    weightsManifest: [],
  };
  await fsp.writeFile(path.join(folder('graph-model'), 'model.json'), JSON.stringify(graph));
  await fsp.mkdir(folder('package-json'));
  await fsp.writeFile(
    path.join(folder('package-json'), 'model.json'),
    JSON.stringify({ name: 'my-model', version: '1.0.0', main: 'index.js' }),
  );
  await fsp.mkdir(folder('binary'));
  await fsp.writeFile(
    path.join(folder('binary'), 'model.json'),
    Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]),
  );
  await fsp.mkdir(folder('pytorch'));
  await fsp.writeFile(path.join(folder('pytorch'), 'model.pt'), Buffer.from('PK\x03\x04 a torch zip'));

  await saveBrightnessModel(folder('truncated-weights'));
  const weights = path.join(folder('truncated-weights'), 'weights.bin');
  await fsp.truncate(weights, (await fsp.stat(weights)).size / 2);
  await saveBrightnessModel(folder('unknown-layer'));
  const modelJson = path.join(folder('unknown-layer'), 'model.json');
  await fsp.writeFile(
    modelJson,
    (await fsp.readFile(modelJson, 'utf8')).replace('"GlobalAveragePooling2D"', '"MagicLayer"'),
  );
  await fsp.writeFile(folder('a-file'), 'not a folder');
});

afterAll(async () => removeDir(dir));

describe('a model folder from another tool, or a damaged one', () => {
  it('evaluate, predict, export and app each say what is wrong in one line, exit 2, and write nothing', async () => {
    const before = (await fsp.readdir(dir)).sort();
    for (const [name, pattern] of FOREIGN) {
      const modelDir = folder(name);
      const commands: [string, string[]][] = [
        ['evaluate', ['evaluate', '--data', data(), '--model-dir', modelDir, '--backend', 'cpu']],
        ['predict', ['predict', '--model-dir', modelDir, '--backend', 'cpu', image]],
        ['export', ['export', '--model-dir', modelDir, '--out', path.join(dir, 'exported'), '--backend', 'cpu']],
        ['app', ['app', '--model-dir', modelDir, '--out', path.join(dir, 'app')]],
      ];
      for (const [command, args] of commands) {
        const result = await runInProcess(args);
        const what = `${command} --model-dir ${name}`;
        expect(result.code, what).toBe(2);
        expect(result.stdout, what).toEqual([]);
        expectOneErrorLine(result, pattern, what);
      }
    }
    expect((await fsp.readdir(dir)).sort()).toEqual(before);
  });

  it('the built CLI prints just that line too, even when tfjs throws (child processes)', async () => {
    const [evaluate, predict] = await Promise.all([
      runChild(['evaluate', '--data', data(), '--model-dir', folder('truncated-weights'), '--backend', 'cpu']),
      runChild(['predict', '--model-dir', folder('keras-converted'), '--backend', 'wasm', image]),
    ]);
    expect(evaluate.code).toBe(2);
    expectOneErrorLine(evaluate, FOREIGN.find(([name]) => name === 'truncated-weights')![1], 'evaluate');
    expect(predict.code).toBe(2);
    expectOneErrorLine(predict, FOREIGN.find(([name]) => name === 'keras-converted')![1], 'predict');
  });
});
