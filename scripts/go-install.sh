# Sourced by scripts/s3-server.sh and scripts/helm.sh: builds a Go program once with
# `go install` (from the Go module proxy) into a cached path.
#
#   go_install_cached NAME MODULE@VERSION BIN_IN_GOBIN DEST
#
# Prints DEST. Concurrent callers (parallel test processes) build once: the others
# wait on a lock next to DEST, then find it built.
go_install_cached() {
  local name="$1" module="$2" binname="$3" dest="$4"
  [ -x "$dest" ] && { echo "$dest"; return; }
  command -v go >/dev/null || { echo "$name: 'go' is not on PATH; install Go >= 1.24 to build it" >&2; exit 1; }
  local dir
  dir="$(dirname "$dest")"
  mkdir -p "$dir"
  exec 9>"$dir/.$binname-install.lock"
  flock 9
  if [ ! -x "$dest" ]; then
    echo "$name: building $module (a few minutes the first time)..." >&2
    local gobin start
    gobin="$(mktemp -d "$dir/.$binname-build.XXXXXX")"
    start=$(date +%s)
    GOBIN="$gobin" GOTOOLCHAIN=local CGO_ENABLED=0 go install "$module" >&2 \
      || { rm -rf "$gobin"; echo "$name: go install $module failed" >&2; exit 1; }
    mv "$gobin/$binname" "$dest"
    rm -rf "$gobin"
    echo "$name: built $dest in $(( $(date +%s) - start )) s" >&2
  fi
  flock -u 9
  echo "$dest"
}
