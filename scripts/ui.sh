#!/usr/bin/env bash
# The engine's web UI (engine/ui): installs its pinned npm packages when
# node_modules is missing or older than package-lock.json, then type-checks and
# bundles it into engine/ui/dist/ (index.html, app.js, app.css), which the engine
# embeds when it is compiled.
#
#   scripts/ui.sh          # npm ci if needed, then tsc --noEmit and the esbuild bundle
#   scripts/ui.sh deps     # npm ci if needed, only
#   scripts/ui.sh test     # npm ci if needed, then the browser test (engine/ui/test/browser.mjs)
#
# The npm cache lives under $SLUICE_CACHE/npm. Needs Node.js 20 or newer and npm.
set -euo pipefail

die() { echo "ui.sh: $*" >&2; exit 1; }

ui="$(cd "$(dirname "$0")/../engine/ui" && pwd)"
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"

command -v node >/dev/null || die "node not found: the web UI needs Node.js 20 or newer and npm"
command -v npm >/dev/null || die "npm not found: the web UI needs Node.js 20 or newer and npm"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || die "Node.js $(node --version) is too old: the web UI needs 20 or newer"

# npm ci only when package-lock.json changed since the last install: the stamp holds its hash.
deps() {
  local stamp="$ui/node_modules/.sluice-lock-sha256" want
  want="$(sha256sum "$ui/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  # --ignore-scripts: no package needs its install script (esbuild's only checks its binary).
  (cd "$ui" && npm ci --cache "$cache/npm" --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error) \
    || die "npm ci failed in engine/ui (is the npm registry reachable?)"
  echo "$want" >"$stamp"
}

case "${1:-build}" in
  build)
    deps
    (cd "$ui" && npm run --silent build)
    ;;
  deps) deps ;;
  test)
    deps
    (cd "$ui" && node test/browser.mjs)
    ;;
  *) die "usage: scripts/ui.sh [build|deps|test]" ;;
esac
