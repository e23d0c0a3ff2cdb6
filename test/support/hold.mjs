// Loaded with `node --import` into the real CLI by the interruption tests, so they can kill it at an exact point:
// MALARIA_TEST_HOLD=copy:<n> stalls the n-th file copy of build-dataset; MALARIA_TEST_HOLD=swap stalls it once it
// has moved the old split out of the output folder and is about to move the new one in; MALARIA_TEST_HOLD=
// checkpoint:<n> stalls train's n-th checkpoint before its last file (state.json); MALARIA_TEST_HOLD=renamed:<name>
// stalls a folder swap (replaceFolder) of the output named <name> after the old folder was moved aside and before
// the new one is renamed into place. Each time the process prints
// "test-hold: holding" on stderr and waits until it is killed.
// MALARIA_TEST_HOLD=slow:<text> instead makes the first stderr write containing <text> take a second (as a slow
// batch would), so that a signal sent on seeing that text surely arrives before the work after it is done.
import fs from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';

const [what, count] = (process.env.MALARIA_TEST_HOLD ?? '').split(':');

function hold() {
  process.stderr.write('\ntest-hold: holding\n');
  setInterval(() => undefined, 60_000);
  return new Promise(() => undefined);
}

if (what === 'copy') {
  const copy = fse.copy;
  let copies = 0;
  fse.copy = function (...args) {
    return ++copies === Number(count) ? hold() : copy.apply(this, args);
  };
}

if (what === 'swap') {
  const rename = fs.promises.rename;
  fs.promises.rename = function (from, to) {
    // The first new entry leaving the run's temporary folder for the output folder.
    return /^\.split\.malaria-tmp-\d+-[0-9a-f]{8}$/.test(path.basename(path.dirname(String(from))))
      ? hold()
      : rename.call(this, from, to);
  };
}

if (what === 'checkpoint') {
  const open = fs.promises.open;
  let checkpoints = 0;
  fs.promises.open = function (file, ...rest) {
    const inTemp = path.basename(path.dirname(String(file))).startsWith('.checkpoint.malaria-tmp-');
    if (inTemp && path.basename(String(file)) === 'state.json' && ++checkpoints === Number(count)) return hold();
    return open.call(this, file, ...rest);
  };
}

if (what === 'slow') {
  const write = process.stderr.write;
  let slowed = false;
  process.stderr.write = function (chunk, ...rest) {
    const written = write.call(this, chunk, ...rest);
    if (!slowed && String(chunk).includes(count)) {
      slowed = true;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    }
    return written;
  };
}

if (what === 'renamed') {
  const rename = fs.promises.rename;
  fs.promises.rename = function (from, to) {
    const swappingIn =
      path.basename(String(to)) === count && path.basename(String(from)).startsWith(`.${count}.malaria-tmp-`);
    return swappingIn ? hold() : rename.call(this, from, to);
  };
}
