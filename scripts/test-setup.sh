#!/usr/bin/env bash
# The system packages the test suite needs, installed when missing (run by `npm test` before it builds, and by
# .ci/run). Idempotent: when everything is there it only asks dpkg, in well under a second.
#   - chromium: the field app's browser tests (playwright-core drives /usr/bin/chromium, never downloads one);
#   - a Vulkan driver Dawn accepts: the webgpu backend's tests run on Mesa's software Vulkan device (llvmpipe).
#     Debian 12's Mesa 22 gives Dawn no adapter; Mesa 23.1+ does (bookworm-backports has 25).
# Where they are missing and cannot be installed (not root, not Debian), it stops with one line naming them.
set -euo pipefail

MESA_MIN=23.1
missing=()

if [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
if [ -z "$mesa_version" ] || ! dpkg --compare-versions "$mesa_version" ge "$MESA_MIN"; then missing+=(mesa-vulkan-drivers); fi
[ ${#missing[@]} -eq 0 ] && exit 0

codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "test setup: missing ${missing[*]/mesa-vulkan-drivers/mesa-vulkan-drivers >= $MESA_MIN (a Vulkan driver for the webgpu tests)}; install them as root (on Debian: bash scripts/test-setup.sh), then run npm test again" >&2
  exit 1
fi

apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@"; }
mesa_suite=()
if [[ " ${missing[*]} " == *" mesa-vulkan-drivers "* ]] && [ "$codename" = bookworm ]; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/bookworm-backports.list
  fi
  mesa_suite=(-t bookworm-backports)
fi
echo "test setup: installing ${missing[*]}" >&2
apt_get update >/dev/null
for package in "${missing[@]}"; do
  if [ "$package" = mesa-vulkan-drivers ]; then
    apt_get install -y "${mesa_suite[@]}" mesa-vulkan-drivers >/dev/null
  else
    apt_get install -y "$package" >/dev/null
  fi
done
