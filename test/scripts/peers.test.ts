import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PRESET_PEER_SCRIPT, presetPeerArgs, runPresetPeer } from '../../scripts/peers.js';
import { PRESETS } from '../../src/model/presets.js';
import { makeTempDir, removeDir } from '../support/temp.js';

// Node stands in for python: it runs the peer "script" (JavaScript under the .py name) with the same arguments.
const NODE = process.execPath;
const laptop = PRESETS.laptop;

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('malaria-peers-');
});
afterAll(async () => removeDir(dir));
afterEach(() => vi.restoreAllMocks());

async function peerDir(name: string, body: string): Promise<string> {
  const folder = path.join(dir, name);
  await fsp.mkdir(folder, { recursive: true });
  await fsp.writeFile(path.join(folder, PRESET_PEER_SCRIPT), body);
  return folder;
}

describe('presetPeerArgs', () => {
  it("passes the preset's shape as torch_resnet_preset.py reads it", () => {
    expect(presetPeerArgs(laptop, 1)).toEqual(['1', '2,3,4', '16,32,64,128', '48']);
  });
});

describe('runPresetPeer', () => {
  it("runs the script with the preset's shape and gives its figures and our ratios to them", async () => {
    const folder = await peerDir(
      'ok',
      `const fs = require('node:fs');
fs.writeFileSync(${JSON.stringify(path.join(dir, 'ok-args.json'))}, JSON.stringify(process.argv.slice(2)));
console.log('warming up');
console.log(JSON.stringify({ params: 98000, train_img_s: 100, infer_img_s: 400 }));`,
    );
    const peer = runPresetPeer(folder, laptop, 2, { train: 36, infer: 249 }, NODE);
    expect(JSON.parse(await fsp.readFile(path.join(dir, 'ok-args.json'), 'utf8'))).toEqual([
      '2',
      '2,3,4',
      '16,32,64,128',
      '48',
    ]);
    expect(peer?.fields).toEqual({
      peer_torch_threads: 2,
      peer_torch_train_img_s: 100,
      peer_torch_infer_img_s: 400,
      ratio_train_vs_torch: 0.36,
      ratio_infer_vs_torch: 0.62,
    });
    expect(peer?.line).toContain('ours is 0.36x in training, 0.62x in inference');
  });

  it('says in one line that the script is missing', () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(runPresetPeer(path.join(dir, 'nowhere'), laptop, 1, { train: 1, infer: 1 }, NODE)).toBeUndefined();
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0][0])).toMatch(/torch_resnet_preset\.py is missing; pass --peers-dir/);
  });

  it('says in one line that PyTorch is missing', async () => {
    const folder = await peerDir(
      'no-torch',
      `process.stderr.write("Traceback (most recent call last):\\nModuleNotFoundError: No module named 'torch'\\n");
process.exit(1);`,
    );
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(runPresetPeer(folder, laptop, 1, { train: 1, infer: 1 }, NODE)).toBeUndefined();
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0][0])).toMatch(/PyTorch is missing \(Debian: apt-get install -y python3-torch\)/);
  });

  it('says in one line that python3 is missing', async () => {
    const folder = await peerDir('no-python', 'console.log("{}")');
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const missing = path.join(dir, 'no-such-python3');
    expect(runPresetPeer(folder, laptop, 1, { train: 1, infer: 1 }, missing)).toBeUndefined();
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0][0])).toMatch(/python3 is missing/);
  });

  it('says in one line when the peer prints no figures', async () => {
    const folder = await peerDir('no-figures', 'console.log("not json")');
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(runPresetPeer(folder, laptop, 1, { train: 1, infer: 1 }, NODE)).toBeUndefined();
    expect(String(error.mock.calls[0][0])).toMatch(/no train_img_s and infer_img_s/);
  });
});
