// `npm run subset -- --from malaria/cell_images --out malaria/cell_images-12000 [--list data/nih-12000.csv.gz]`
// Rebuilds the 12,000-image subset the README's and BENCHMARKS.md's figures use from the images `malaria download`
// extracted: copies each listed image into --out after checking its sha256. --out must be missing, empty or an
// earlier rebuild of the list; --from is only read. A missing or different image: one line, nothing written.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { UserError } from '../src/errors.js';
import { runScript } from './run-script.js';
import { DEFAULT_SUBSET_LIST, rebuildSubset } from './subset-list.js';

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      out: { type: 'string' },
      list: { type: 'string', default: DEFAULT_SUBSET_LIST },
    },
  });
  if (!values.from || !values.out) {
    throw new UserError(
      'pass --from <cell_images folder of `malaria download`> --out <new folder> [--list <list.csv.gz>]',
    );
  }
  const { copied } = await rebuildSubset({ list: values.list, from: values.from, out: values.out });
  console.log(`wrote ${copied} images, each checked against ${values.list}, to ${values.out}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runScript('subset', () => main(process.argv.slice(2)));
}
