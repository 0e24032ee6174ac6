#!/usr/bin/env bash
# Chromium for the web UI's browser test (engine/ui/test/browser.mjs), from
# Debian's package: Playwright's own browser downloads are not used (playwright-core
# drives the system Chromium at /usr/bin/chromium). Installs it with apt-get when it
# is missing, which needs root, as on CI machines; prints the binary's path.
set -euo pipefail

bin="${SLUICE_CHROMIUM:-/usr/bin/chromium}"
die() { echo "chromium.sh: $*" >&2; exit 1; }

if [ ! -x "$bin" ]; then
  [ "$(id -u)" = 0 ] || die "$bin is missing: install Debian's chromium package (apt-get install chromium) or set SLUICE_CHROMIUM to a Chromium binary"
  command -v apt-get >/dev/null || die "$bin is missing and there is no apt-get: install Chromium and set SLUICE_CHROMIUM to its binary"
  echo "chromium.sh: installing chromium with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium >&2 || die "apt-get install chromium failed"
  [ -x "$bin" ] || die "apt-get installed chromium but $bin is still missing"
fi
echo "$bin"
