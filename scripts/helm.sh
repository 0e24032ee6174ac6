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

# shellcheck source=scripts/go-install.sh
. "$(dirname "$0")/go-install.sh"

install() { go_install_cached helm.sh "$HELM_MODULE@$HELM_VERSION" helm "$bin"; }

case "${1:-}" in
  install) install ;;
  path) [ -x "$bin" ] && echo "$bin" || exit 1 ;;
  *) die "usage: scripts/helm.sh install|path" ;;
esac
