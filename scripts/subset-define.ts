// `npm run build && node dist/scripts/subset-define.js --from ../shared/data/cell_images --out data/nih-12000.csv.gz`
// Writes the definition of the image subset in --from (`<Class>/<file>`): a gzipped CSV of class, file name and the
// sha256 of each image's bytes, which `npm run subset` rebuilds the subset from. It only reads --from.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { UserError } from '../src/errors.js';
import { writeFileAtomic } from '../src/io/atomic.js';
import { runScript } from './run-script.js';
import { defineSubset, formatSubsetList } from './subset-list.js';

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { from: { type: 'string' }, out: { type: 'string' } } });
  if (!values.from || !values.out) throw new UserError('pass --from <folder of class folders> --out <list.csv.gz>');
  const entries = await defineSubset(values.from);
  if (entries.length === 0) throw new UserError(`--from ${values.from} holds no images in class folders`);
  await writeFileAtomic(values.out, formatSubsetList(entries));
  const perClass = new Map<string, number>();
  for (const e of entries) perClass.set(e.className, (perClass.get(e.className) ?? 0) + 1);
  const counts = [...perClass].map(([name, n]) => `${n} ${name}`).join(', ');
  console.log(`wrote ${values.out}: ${entries.length} images (${counts})`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runScript('subset-define', () => main(process.argv.slice(2)));
}
