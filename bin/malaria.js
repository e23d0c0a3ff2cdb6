#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` via the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error('malaria: the CLI is not built yet; run `npm install` (or `npm run build`) in the project folder.');
  process.exit(2);
}
const { main } = await import(cli.href);
await main(process.argv);
