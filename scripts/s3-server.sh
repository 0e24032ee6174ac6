#!/usr/bin/env bash
# A real S3-compatible server for tests: MinIO, built from a pinned commit with `go install`.
#
#   scripts/s3-server.sh install   # builds MinIO into $SLUICE_CACHE/bin if it is missing; prints its path
#   scripts/s3-server.sh path      # prints the binary's path (exit 1 if it is not installed)
#   scripts/s3-server.sh run --addr 127.0.0.1:PORT --dir DIR --access-key K --secret-key S
#
# `run` execs the server in the foreground (stop it with a signal). It listens only on the given
# address, with the web console off. Buckets are created through the S3 API (CreateBucket).
# MinIO wants a secret key of at least 8 characters.
#
# Why MinIO and not s3s-fs: the s3s-fs releases that build on Rust 1.95 (<= 0.14.1) do not implement
# ListMultipartUploads, which Storage::list_pending_uploads needs.
set -euo pipefail

MINIO_MODULE=github.com/minio/minio
# The last commit of MinIO's master branch on the Go module proxy (2026-02-12).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
bin="$cache/bin/minio-${MINIO_VERSION##*-}"

die() { echo "s3-server: $*" >&2; exit 1; }

# shellcheck source=scripts/go-install.sh
. "$(dirname "$0")/go-install.sh"

install() { go_install_cached s3-server "$MINIO_MODULE@$MINIO_VERSION" minio "$bin"; }

run() {
  local addr="" dir="" ak="" sk=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --addr) addr="$2"; shift 2 ;;
      --dir) dir="$2"; shift 2 ;;
      --access-key) ak="$2"; shift 2 ;;
      --secret-key) sk="$2"; shift 2 ;;
      *) die "unknown argument '$1' (usage: run --addr HOST:PORT --dir DIR --access-key K --secret-key S)" ;;
    esac
  done
  [ -n "$addr" ] && [ -n "$dir" ] && [ -n "$ak" ] && [ -n "$sk" ] \
    || die "usage: run --addr HOST:PORT --dir DIR --access-key K --secret-key S"
  [ ${#sk} -ge 8 ] || die "MinIO needs a secret key of at least 8 characters"
  install >/dev/null
  mkdir -p "$dir"
  export MINIO_ROOT_USER="$ak" MINIO_ROOT_PASSWORD="$sk" MINIO_BROWSER=off MINIO_UPDATE=off
  export MINIO_CI_CD=1
  exec "$bin" server --quiet --anonymous --address "$addr" "$dir"
}

case "${1:-}" in
  install) install ;;
  path) [ -x "$bin" ] && echo "$bin" || die "MinIO is not installed; run '$0 install'" ;;
  run) shift; run "$@" ;;
  *) die "usage: $0 install | path | run --addr HOST:PORT --dir DIR --access-key K --secret-key S" ;;
esac
