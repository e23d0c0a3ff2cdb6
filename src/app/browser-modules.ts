// The JavaScript the page runs: the compiled ES modules of src/app/browser/ and every module they import
// (the resize, scaleToUnit, the parasitemia summary...), so the browser runs the very code training and
// `predict` run. Compiled, they are read from dist/src/; run from source (vitest), the .ts files are transpiled
// on the fly so tests never see a stale build.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The page's entry module, relative to the source root. */
export const PAGE_ENTRY = 'app/browser/main.js';

/** src/ when run from source, dist/src/ when compiled: this file sits one folder below either. */
const SOURCE_ROOT = fileURLToPath(new URL('../', import.meta.url));
const FROM_SOURCE = import.meta.url.endsWith('.ts');

// Statements at the start of a line, as tsc emits them: `import ... from '...'`, `export ... from '...'`,
// `import '...'`; and import('...') anywhere.
const IMPORT_PATTERN =
  /^\s*(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/gm;
const SOURCE_MAP_COMMENT = /\n?\/\/# sourceMappingURL=\S+\s*$/;

async function transpile(file: string): Promise<string> {
  // typescript is a dev dependency: only reached when running from source, never from the installed CLI.
  const ts = (await import('typescript')).default;
  const source = await fs.readFile(file, 'utf8');
  return ts.transpileModule(source, {
    fileName: file,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 },
  }).outputText;
}

async function readModule(relative: string): Promise<string> {
  const file = path.join(SOURCE_ROOT, relative);
  const code = FROM_SOURCE ? await transpile(file.replace(/\.js$/, '.ts')) : await fs.readFile(file, 'utf8');
  return code.replace(SOURCE_MAP_COMMENT, '\n');
}

/** Relative specifiers of the module's imports. Anything else (a package, node:fs) cannot load in the page. */
export function importsOf(relative: string, code: string): string[] {
  const specifiers = [...code.matchAll(IMPORT_PATTERN)].map((m) => m[1] ?? m[2] ?? m[3]);
  for (const specifier of specifiers) {
    if (!specifier.startsWith('./') && !specifier.startsWith('../')) {
      throw new Error(
        `${relative} imports "${specifier}": modules the app ships to the browser may only import relative modules`,
      );
    }
  }
  return specifiers;
}

/**
 * The entry module and everything it imports, transitively: a map from the path relative to the source root
 * ("data/resize.js") to the module's code. Written under one folder, the relative imports resolve unchanged.
 */
export async function browserModules(entry = PAGE_ENTRY): Promise<Map<string, string>> {
  const modules = new Map<string, string>();
  const pending = [entry];
  while (pending.length > 0) {
    const relative = pending.pop() as string;
    if (modules.has(relative)) continue;
    const code = await readModule(relative);
    modules.set(relative, code);
    for (const specifier of importsOf(relative, code)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(relative), specifier));
      if (target.startsWith('..')) throw new Error(`${relative} imports ${specifier}, outside the source folder`);
      pending.push(target);
    }
  }
  return modules;
}
