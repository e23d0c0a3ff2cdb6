// The machine's Chrome or Chromium driven by playwright-core (which never downloads one), for the browser tests of
// the field app.
import { accessSync, constants, statSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';

/** Where Linux distributions and macOS install Chrome or Chromium, in the order tried (scripts/test-setup.sh too). */
export const CHROME_LOCATIONS: readonly string[] = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The browser to launch: the one CHROME_PATH names, else the first of `locations` that is there. Throws one line
 * naming what is missing and how to get it (a CHROME_PATH that names no program is an error, never passed over).
 */
export function findChrome(env: NodeJS.ProcessEnv = process.env, locations = CHROME_LOCATIONS): string {
  const chosen = env.CHROME_PATH;
  if (chosen) {
    if (isExecutableFile(chosen)) return chosen;
    throw new Error(`CHROME_PATH=${chosen} is not an executable file: point it at Chrome or Chromium, or unset it`);
  }
  const found = locations.find(isExecutableFile);
  if (found) return found;
  throw new Error(
    `no Chrome or Chromium found: install chromium or set CHROME_PATH (looked at ${locations.join(', ')}; on Debian as root, bash scripts/test-setup.sh installs it)`,
  );
}

/**
 * The machine's Chrome or Chromium (findChrome), headless, with the fresh profile folder `profileDir` (playwright
 * passes it as --user-data-dir, which it refuses in args); fails, never skips, when there is none.
 */
export async function launchChromium(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: findChrome(),
    viewport: { width: 1200, height: 900 },
    args: [
      '--headless',
      // Root (CI, containers) cannot use Chrome's sandbox.
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
