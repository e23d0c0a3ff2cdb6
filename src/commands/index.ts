import type { Command } from '@commander-js/extra-typings';
import { registerBuildDataset } from './build-dataset.js';
import { registerDownload } from './download.js';
import { registerTrain } from './train.js';
import { registerEvaluate } from './evaluate.js';
import { registerApp } from './app.js';
import { registerPredict } from './predict.js';
import { registerExport } from './export.js';
import { registerBackends } from './backends.js';
import { registerCrossval } from './crossval.js';

/** Adds every subcommand to the program (each module registers one verb). */
export function registerCommands(program: Command): void {
  registerBuildDataset(program);
  registerDownload(program);
  registerTrain(program);
  registerCrossval(program);
  registerEvaluate(program);
  registerApp(program);
  registerPredict(program);
  registerExport(program);
  registerBackends(program);
}
