// The PyTorch peer of a `train --preset` network for `npm run bench -- --preset <name> --peers`:
// ../shared/bench/torch_resnet_preset.py builds the same residual network (stages, filters, input size) and times
// it at batch 32 on as many threads as ours computes on, so the ratios compare like with like.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainRecipe } from '../src/model/recipe.js';
import { wasmThreads, type BackendName } from '../src/backends/select.js';

export const PRESET_PEER_SCRIPT = 'torch_resnet_preset.py';

/** ../shared/bench next to the repository (this file runs as dist/scripts/peers.js or scripts/peers.ts). */
export function defaultPeersDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const repo = path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '../..') : path.resolve(here, '..');
  return path.resolve(repo, '../shared/bench');
}

/** The threads our backend computes on (wasm: MALARIA_WASM_THREADS or one per core), for the peer to use as many. */
export function peerThreads(backend: BackendName): number {
  const cores = os.availableParallelism();
  return backend === 'wasm' ? wasmThreads(process.env, cores) : cores;
}

export interface PresetPeerResult {
  /** The peer's figures and our ratios to them, for the bench's JSON line. */
  fields: Record<string, number>;
  /** One line for a person. */
  line: string;
}

/** The arguments torch_resnet_preset.py takes for a preset: THREADS STAGES FILTERS SIZE. */
export function presetPeerArgs(recipe: Pick<TrainRecipe, 'stages' | 'filters' | 'imageSize'>, threads: number) {
  return [String(threads), recipe.stages.join(','), recipe.filters.join(','), String(recipe.imageSize)];
}

/**
 * Runs the preset's PyTorch peer and compares `ours` (img/s) with it. Undefined, after one line on stderr saying
 * what is missing, when the script, python3 or PyTorch is not there, or the peer fails.
 */
export function runPresetPeer(
  peersDir: string,
  recipe: Pick<TrainRecipe, 'stages' | 'filters' | 'imageSize'>,
  threads: number,
  ours: { train: number; infer: number },
  // Debian's python3-torch installs for the system python, which a virtualenv's python3 on PATH would not see.
  python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
): PresetPeerResult | undefined {
  const script = path.resolve(peersDir, PRESET_PEER_SCRIPT);
  if (!existsSync(script)) {
    console.error(`peer skipped: ${script} is missing; pass --peers-dir <the folder with ${PRESET_PEER_SCRIPT}>`);
    return undefined;
  }
  let out: string;
  try {
    out = execFileSync(python, [script, ...presetPeerArgs(recipe, threads)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const error = err as NodeJS.ErrnoException & { stderr?: string };
    if (error.code === 'ENOENT') console.error('peer skipped: python3 is missing (Debian: apt-get install -y python3)');
    else if (/No module named ['"]?torch/.test(error.stderr ?? '')) {
      console.error('peer skipped: PyTorch is missing (Debian: apt-get install -y python3-torch)');
    } else {
      const last = (error.stderr ?? error.message).trim().split('\n').pop();
      console.error(`peer ${PRESET_PEER_SCRIPT} failed: ${last}`);
    }
    return undefined;
  }
  let peer: { train_img_s?: number; infer_img_s?: number } = {};
  try {
    peer = JSON.parse(out.trim().split('\n').pop() ?? '') as typeof peer;
  } catch {
    // Reported below with the other malformed answers.
  }
  if (typeof peer.train_img_s !== 'number' || typeof peer.infer_img_s !== 'number') {
    console.error(`peer ${PRESET_PEER_SCRIPT} failed: its last line has no train_img_s and infer_img_s`);
    return undefined;
  }
  const trainRatio = Number((ours.train / peer.train_img_s).toFixed(2));
  const inferRatio = Number((ours.infer / peer.infer_img_s).toFixed(2));
  const threadWord = threads === 1 ? 'one thread' : `${threads} threads`;
  return {
    fields: {
      peer_torch_threads: threads,
      peer_torch_train_img_s: peer.train_img_s,
      peer_torch_infer_img_s: peer.infer_img_s,
      ratio_train_vs_torch: trainRatio,
      ratio_infer_vs_torch: inferRatio,
    },
    line:
      `PyTorch peer (${PRESET_PEER_SCRIPT}, ${threadWord}): train ${peer.train_img_s} img/s, inference ` +
      `${peer.infer_img_s} img/s; ours is ${trainRatio}x in training, ${inferRatio}x in inference`,
  };
}
