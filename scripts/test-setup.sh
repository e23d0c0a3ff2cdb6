#!/usr/bin/env bash
# What the test suite needs from the machine, checked by `npm test` before it builds (and by .ci/run):
#   - Chrome or Chromium for the field app's browser tests: $CHROME_PATH, else the first of the usual places below
#     (the same list as test/support/browser.ts); playwright-core drives it and never downloads one;
#   - a WebGPU adapter for the webgpu backend's tests: any the `webgpu` package finds (Metal on macOS, a GPU's Vulkan
#     driver, or Mesa's software Vulkan device llvmpipe: Debian 12's Mesa 22 gives Dawn no adapter, Mesa 23.1+ does).
# As root with apt (CI, Debian) it installs what is missing: chromium, mesa-vulkan-drivers 23.1+ (bookworm-backports on
# Debian 12). Whatever it cannot provide it names in one line with how to get it, and exits 0 all the same: the
# tests that need it then fail with the same advice, and every other test still runs.
# Idempotent: when everything is there it only looks at files and asks Dawn for an adapter, in well under a second.
set -uo pipefail
cd "$(dirname "$0")/.."

MESA_MIN=23.1
chrome_locations=(
  /usr/bin/chromium
  /usr/bin/chromium-browser
  /usr/bin/google-chrome
  /usr/bin/google-chrome-stable
  /snap/bin/chromium
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome'
  /Applications/Chromium.app/Contents/MacOS/Chromium
)

# What is wrong with the browser, in the words test/support/browser.ts uses; nothing when there is one.
browser_problem() {
  if [ -n "${CHROME_PATH:-}" ]; then
    [ -f "$CHROME_PATH" ] && [ -x "$CHROME_PATH" ] && return
    echo "CHROME_PATH=$CHROME_PATH is not an executable file: point it at Chrome or Chromium, or unset it"
    return
  fi
  for location in "${chrome_locations[@]}"; do
    [ -f "$location" ] && [ -x "$location" ] && return
  done
  echo 'no Chrome or Chromium found: install chromium or set CHROME_PATH'
}

# Asks Dawn in a separate process (a broken driver can crash it; its driver warnings go to stderr, dropped here).
# Prints why there is no adapter; nothing when there is one.
ADAPTER_PROBE='
setTimeout(() => { console.log("the webgpu package did not answer within 30 s"); process.exit(0); }, 30_000);
let dawn;
try {
  dawn = await import("webgpu");
} catch (err) {
  console.log(`the optional package webgpu does not load (${String(err.message).split("\n")[0]})`);
  process.exit(0);
}
Object.assign(globalThis, dawn.globals);
const adapter = await dawn.create([]).requestAdapter();
if (!adapter) console.log("the webgpu package finds no adapter");
process.exit(0);
'
adapter_problem() {
  local answer
  answer=$(node --input-type=module -e "$ADAPTER_PROBE" 2>/dev/null)
  local status=$?
  if [ "$status" != 0 ] && [ -z "$answer" ]; then answer="asking the webgpu package for an adapter failed (exit $status)"; fi
  [ -n "$answer" ] && echo "no WebGPU adapter ($answer): $(webgpu_fix)"
}

mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
mesa_is_recent() {
  local version
  version=$(mesa_version)
  [ -n "$version" ] && dpkg --compare-versions "$version" ge "$MESA_MIN" 2>/dev/null
}

# How to get an adapter on this machine.
webgpu_fix() {
  if [ "$(uname)" = Darwin ]; then
    echo 'macOS gives WebGPU through Metal: reinstall the optional package webgpu (npm ci)'
  elif command -v dpkg-query >/dev/null && mesa_is_recent; then
    echo "mesa-vulkan-drivers $(mesa_version) is installed, yet Dawn sees no device: check \`vulkaninfo --summary\` and VK_ICD_FILENAMES"
  elif command -v apt-get >/dev/null; then
    echo "install mesa-vulkan-drivers $MESA_MIN+ as root (sudo bash scripts/test-setup.sh does, from bookworm-backports on Debian 12)"
  else
    echo "install a Vulkan driver: your GPU's, or Mesa's $MESA_MIN+ (llvmpipe, on the CPU)"
  fi
}

chrome=$(browser_problem)
webgpu=$(adapter_problem)
[ -z "$chrome$webgpu" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  packages=()
  # A wrong CHROME_PATH is the user's to fix: the tests would still launch what it names, not an installed chromium.
  if [ -n "$chrome" ] && [ -z "${CHROME_PATH:-}" ]; then packages+=(chromium); fi
  if [ -n "$webgpu" ] && ! mesa_is_recent; then packages+=(mesa-vulkan-drivers); fi
  if [ ${#packages[@]} -gt 0 ]; then
    apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@"; }
    codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    mesa_suite=()
    if [[ " ${packages[*]} " == *" mesa-vulkan-drivers "* ]] && [ "$codename" = bookworm ]; then
      if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/bookworm-backports.list
      fi
      mesa_suite=(-t bookworm-backports)
    fi
    echo "test setup: installing ${packages[*]}" >&2
    apt_get update >/dev/null || echo 'test setup: apt-get update failed' >&2
    for package in "${packages[@]}"; do
      suite=()
      [ "$package" = mesa-vulkan-drivers ] && suite=("${mesa_suite[@]}")
      apt_get install -y "${suite[@]}" "$package" >/dev/null || echo "test setup: could not install $package" >&2
    done
    chrome=$(browser_problem)
    webgpu=$(adapter_problem)
  fi
fi

[ -n "$chrome" ] && echo "test setup: $chrome; the browser tests will fail until then" >&2
[ -n "$webgpu" ] && echo "test setup: $webgpu; the webgpu tests will fail until then" >&2
exit 0
