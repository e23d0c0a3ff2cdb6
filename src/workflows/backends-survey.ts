// `malaria backends`: every backend, whether it loads on this machine, its device, and a short measured inference
// and training speed. Each backend is measured in its own child process (a loaded backend stays loaded, and a GPU
// driver may crash its process); a child that runs past its deadline is stopped and what it reported is kept.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BACKEND_NAMES, type BackendName } from '../backends/select.js';
import type { MeasureEvent, MeasureOptions, MemoryKind } from './measure-backends.js';

export interface BackendReport {
  backend: BackendName;
  loads: boolean;
  /** Why it does not load. */
  reason?: string;
  device?: string;
  inferImgPerSecond?: number;
  trainImgPerSecond?: number;
  /** Images per forward/backward pass in the training measurement (wasm trains in micro-batches). */
  microBatch?: number;
  /** What a training step used, and of what (MemoryKind: device memory, the wasm heap, tensors). */
  memoryBytes?: number;
  memoryKind?: MemoryKind;
  /** What was not measured and why (the deadline, a crash). */
  note?: string;
}

export interface Survey {
  backends: BackendReport[];
  /** The backend line `--backend auto` prints on this machine. */
  auto: string;
}

export interface SurveyOptions extends MeasureOptions {
  only?: readonly BackendName[];
  /** Longest a backend's child may run, loading included. */
  deadlineSeconds: number;
  onProgress?: (line: string) => void;
}

/** bin/malaria.js of this installation (this module runs from src/workflows or from dist/src/workflows). */
function cliPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++, dir = path.dirname(dir)) {
    const bin = path.join(dir, 'bin', 'malaria.js');
    if (existsSync(bin)) return bin;
  }
  throw new Error('bin/malaria.js not found beside this installation');
}

/** The flags that make a child measure the same model as the parent was asked to. */
function childArgs(choice: BackendName | 'auto', options: MeasureOptions): string[] {
  const { architecture } = options;
  return [
    'backends',
    '--child',
    choice,
    '--image-size',
    String(architecture.inputSize),
    '--stages',
    (architecture.stages ?? []).join(','),
    '--filters',
    (architecture.filters ?? []).join(','),
    '--batch-size',
    String(options.batchSize),
    '--seconds',
    String(options.seconds),
  ];
}

/** Runs one child and collects its events until it ends or its deadline passes. */
function runChild(
  choice: BackendName | 'auto',
  options: SurveyOptions,
): Promise<{ events: MeasureEvent[]; ending?: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath(), ...childArgs(choice, options)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const events: MeasureEvent[] = [];
    let buffered = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.deadlineSeconds * 1000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('{')) events.push(JSON.parse(line) as MeasureEvent);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let ending: string | undefined;
      if (timedOut) ending = `stopped after ${options.deadlineSeconds} s`;
      else if (code !== 0) {
        const said = stderr.split('\n').find((l) => l.startsWith('malaria: ')) ?? '';
        ending = `its process ended with ${signal ?? `exit code ${code}`}${said ? ` (${said.replace(/^malaria: /, '')})` : ''}`;
      }
      resolve({ events, ending });
    });
  });
}

function report(backend: BackendName, events: MeasureEvent[], ending: string | undefined): BackendReport {
  const result: BackendReport = { backend, loads: false };
  for (const event of events) {
    if (event.event === 'failed') result.reason = event.reason.replace(/^backend "\w+" /, '');
    if (event.event === 'loaded') Object.assign(result, { loads: true, device: event.device });
    if (event.event === 'infer') result.inferImgPerSecond = event.imgPerSecond;
    if (event.event === 'train') {
      const { imgPerSecond, microBatch, memoryBytes, memoryKind } = event;
      Object.assign(result, { trainImgPerSecond: imgPerSecond, microBatch });
      if (memoryBytes !== undefined) Object.assign(result, { memoryBytes, memoryKind });
    }
  }
  if (!result.loads && !result.reason) result.reason = ending ?? 'it reported nothing';
  else if (result.loads && result.trainImgPerSecond === undefined) {
    const missing = result.inferImgPerSecond === undefined ? 'not measured' : 'training not measured';
    result.note = `${missing}: ${ending ?? 'no result'}`;
  }
  return result;
}

/** Loads and measures every backend (or `only`), one child process at a time so that they do not share the cores. */
export async function surveyBackends(options: SurveyOptions): Promise<Survey> {
  const backends: BackendReport[] = [];
  for (const name of BACKEND_NAMES.filter((n) => !options.only || options.only.includes(n))) {
    options.onProgress?.(`measuring ${name}...`);
    const { events, ending } = await runChild(name, options);
    backends.push(report(name, events, ending));
  }
  const auto = await runChild('auto', options);
  const loaded = auto.events.find((e) => e.event === 'loaded');
  const failed = auto.events.find((e) => e.event === 'failed');
  return {
    backends,
    auto:
      loaded?.event === 'loaded'
        ? loaded.message
        : failed?.event === 'failed'
          ? failed.reason
          : (auto.ending ?? 'unknown'),
  };
}

const speed = (value: number | undefined) =>
  value === undefined ? '-' : value < 10 ? value.toFixed(2) : value.toFixed(1);

/** "2.35 GB device", "310 MB heap": the memory column. */
function formatMemory(bytes: number | undefined, kind: MemoryKind | undefined): string {
  if (bytes === undefined || kind === undefined) return '-';
  const size =
    bytes >= 1e9
      ? `${(bytes / 1e9).toFixed(2)} GB`
      : bytes >= 1e6
        ? `${(bytes / 1e6).toFixed(bytes >= 1e7 ? 0 : 1)} MB`
        : `${Math.max(1, Math.round(bytes / 1e3))} kB`;
  return `${size} ${kind}`;
}

/** The survey as a table, then what auto chooses. */
export function formatSurvey(survey: Survey, options: MeasureOptions): string[] {
  const { architecture } = options;
  const lines = [
    `ResNet stages ${(architecture.stages ?? []).join(',')}, filters ${(architecture.filters ?? []).join(',')}, ${architecture.inputSize}x${architecture.inputSize}, batch ${options.batchSize}; ` +
      `img/s measured for ${options.seconds} s after one warm-up batch; train memory: what a training step used ` +
      '(device: memory tfjs held on the GPU, its pooled buffers included; heap: the wasm heap; tensors: tfjs tensors at once)',
    '',
    `${'backend'.padEnd(11)}${'loads'.padEnd(7)}${'train img/s'.padStart(12)}${'infer img/s'.padStart(13)}${'train memory'.padStart(18)}  device`,
  ];
  for (const b of survey.backends) {
    const train =
      b.microBatch !== undefined && b.microBatch < options.batchSize
        ? `${speed(b.trainImgPerSecond)} (mb ${b.microBatch})`
        : speed(b.trainImgPerSecond);
    const device = b.loads ? `${b.device ?? ''}${b.note ? `; ${b.note}` : ''}` : (b.reason ?? '');
    lines.push(
      `${b.backend.padEnd(11)}${(b.loads ? 'yes' : 'no').padEnd(7)}${train.padStart(12)}${speed(b.inferImgPerSecond).padStart(13)}${(b.loads ? formatMemory(b.memoryBytes, b.memoryKind) : '').padStart(18)}  ${device}`,
    );
  }
  lines.push('', `--backend auto: ${survey.auto.replace(/^backend: /, '')}`);
  return lines;
}
