// `malaria download`: fetch cell_images.zip (resumable) and extract it to <dir>/cell_images/<Class>/.
import type { Command } from '@commander-js/extra-typings';
import { DOWNLOAD_DEFAULTS } from '../config.js';
import { ARCHIVE_NAME, downloadDataset, IMAGES_FOLDER } from '../workflows/download.js';
import { withFolderLock } from '../io/lock.js';
import { createReporter } from '../report/reporter.js';

export function registerDownload(program: Command): void {
  program
    .command('download')
    .description(`download ${ARCHIVE_NAME} (resumable) and extract it to <dir>/${IMAGES_FOLDER}/<Class>/`)
    .option('--url <url>', 'where to fetch the archive', DOWNLOAD_DEFAULTS.url as string)
    .option(
      '--dir <dir>',
      `folder that receives ${ARCHIVE_NAME} and ${IMAGES_FOLDER}/`,
      DOWNLOAD_DEFAULTS.dir as string,
    )
    .option('--force', `extract again over an existing <dir>/${IMAGES_FOLDER}`, false)
    .action(async (flags) => {
      await withFolderLock(flags.dir, `--dir ${flags.dir}`, () => downloadDataset(flags, createReporter()));
    });
}
