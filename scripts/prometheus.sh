#!/usr/bin/env bash
# `prometheus` and `promtool` for the dashboard and alert tests (operator/tests/prometheus.rs):
# Prometheus built from a pinned release with `go install` (the Go module proxy is the registry
# this machine reaches). Prometheus 3.x publishes its Go module as v0.3xx.y (3.16 -> v0.316.0).
#
#   scripts/prometheus.sh install        # builds both into $SLUICE_CACHE/bin if missing; prints their paths
#   scripts/prometheus.sh path           # prints the prometheus binary's path (exit 1 if not installed)
#   scripts/prometheus.sh promtool-path  # prints the promtool binary's path (exit 1 if not installed)
#
# The server is built without the `builtinassets` tag: no web UI, the HTTP API the tests use works.
set -euo pipefail

PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_VERSION=v0.316.0

cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
prometheus_bin="$cache/bin/prometheus-$PROMETHEUS_VERSION"
promtool_bin="$cache/bin/promtool-$PROMETHEUS_VERSION"

die() { echo "prometheus.sh: $*" >&2; exit 1; }

# shellcheck source=scripts/go-install.sh
. "$(dirname "$0")/go-install.sh"

# Two `go install`s of the same module: the second reuses the first's build cache.
install() {
  go_install_cached prometheus.sh "$PROMETHEUS_MODULE/cmd/promtool@$PROMETHEUS_VERSION" promtool "$promtool_bin"
  go_install_cached prometheus.sh "$PROMETHEUS_MODULE/cmd/prometheus@$PROMETHEUS_VERSION" prometheus "$prometheus_bin"
}

case "${1:-}" in
  install) install ;;
  path) [ -x "$prometheus_bin" ] && echo "$prometheus_bin" || exit 1 ;;
  promtool-path) [ -x "$promtool_bin" ] && echo "$promtool_bin" || exit 1 ;;
  *) die "usage: scripts/prometheus.sh install|path|promtool-path" ;;
esac
