#!/usr/bin/env bash
# The `helm` binary for the chart tests and `SANDBOX_OPERATOR=helm`: Helm v3, built from a pinned
# release with `go install` (the Go module proxy is the registry this machine reaches).
#
#   scripts/helm.sh install   # builds Helm into $SLUICE_CACHE/bin if it is missing; prints its path
#   scripts/helm.sh path      # prints the binary's path (exit 1 if it is not installed)
set -euo pipefail

HELM_MODULE=helm.sh/helm/v3/cmd/helm
HELM_VERSION=v3.22.0

cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
bin="$cache/bin/helm-$HELM_VERSION"

die() { echo "helm.sh: $*" >&2; exit 1; }

install() {
  [ -x "$bin" ] && { echo "$bin"; return; }
  command -v go >/dev/null || die "'go' is not on PATH; install Go >= 1.24 to build Helm"
  mkdir -p "$cache/bin"
  # Concurrent test processes may all call install; one builds, the others wait.
  exec 9>"$cache/bin/.helm-install.lock"
  flock 9
  if [ ! -x "$bin" ]; then
    echo "helm.sh: building Helm $HELM_VERSION (a few minutes the first time)..." >&2
    local gobin start
    gobin="$(mktemp -d "$cache/bin/.helm-build.XXXXXX")"
    start=$(date +%s)
    GOBIN="$gobin" GOTOOLCHAIN=local CGO_ENABLED=0 go install "$HELM_MODULE@$HELM_VERSION" >&2 \
      || { rm -rf "$gobin"; die "go install $HELM_MODULE@$HELM_VERSION failed"; }
    mv "$gobin/helm" "$bin"
    rm -rf "$gobin"
    echo "helm.sh: built $bin in $(( $(date +%s) - start )) s" >&2
  fi
  flock -u 9
  echo "$bin"
}

case "${1:-}" in
  install) install ;;
  path) [ -x "$bin" ] && echo "$bin" || exit 1 ;;
  *) die "usage: scripts/helm.sh install|path" ;;
esac
