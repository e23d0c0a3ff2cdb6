// `malaria app`: writes the offline field web app for a trained model and, with --serve, serves it (on localhost
// unless --host names another address).
import type { Command } from '@commander-js/extra-typings';
import { APP_DEFAULTS } from '../config.js';
import { serveApp } from '../app/serve.js';
import { untilInterrupted } from '../io/interrupt.js';
import { withFolderLock } from '../io/lock.js';
import { writeFieldApp } from '../workflows/app.js';
import { createReporter } from '../report/reporter.js';
import { modelDirOption, portNumber } from './options.js';

/** The `app` command with its flags; their types come from these definitions. */
function declareApp(program: Command) {
  return program
    .command('app')
    .description("write an offline web app that classifies a slide's cells in the browser and reports parasitemia")
    .addOption(modelDirOption())
    .option(
      '--out <dir>',
      'folder to write the app into (replaced if it holds an earlier app)',
      APP_DEFAULTS.out as string,
    )
    .option('--serve', 'serve the app (on 127.0.0.1 unless --host says otherwise) and print its URL; Ctrl-C stops')
    .option('--port <n>', 'port for --serve (0 picks a free one)', portNumber, APP_DEFAULTS.port as number)
    .option(
      '--host <address>',
      'address for --serve: 127.0.0.1 (this machine only), one of its network addresses, or 0.0.0.0 (all); offline use needs https or localhost',
      APP_DEFAULTS.host as string,
    );
}

type AppFlags = ReturnType<ReturnType<typeof declareApp>['opts']>;

export function registerApp(program: Command): void {
  declareApp(program).action((flags) => runApp(flags));
}

/** Browsers give a service worker only to https pages and to http pages of localhost. */
const SECURE_CONTEXT_NOTE =
  'note: other devices reach the app over plain http, where browsers allow no service worker: it classifies while this server runs, ' +
  'but does not load offline. For offline use serve it over https (for example behind a reverse proxy with a certificate), or open it as http://localhost on the device that serves it.';

async function runApp(flags: AppFlags): Promise<void> {
  const report = createReporter();
  // Held while writing, not while serving: another run may write the app anew meanwhile.
  const app = await withFolderLock(flags.out, `--out ${flags.out}`, () =>
    writeFieldApp({ modelDir: flags.modelDir, outDir: flags.out }),
  );
  const megabytes = (app.bytes / 1024 / 1024).toFixed(1);
  const source = app.config.thresholdSource === 'model' ? 'saved with the model' : 'the default';
  report.result(
    `wrote the app to ${flags.out}: ${app.files.length} files, ${megabytes} MB; it starts at threshold ${app.config.threshold} (${source})`,
  );
  if (!flags.serve) {
    report.result(
      'browsers do not run it from file://: serve it with `malaria app --serve`, or copy the folder to any static web server',
    );
    return;
  }
  const server = await serveApp(app.outDir, flags.port, flags.host);
  report.result(`serving the app at ${server.urls.join(' and ')} (Ctrl-C to stop)`);
  if (!server.loopback) report.note(SECURE_CONTEXT_NOTE);
  await untilInterrupted();
  await server.close();
}
