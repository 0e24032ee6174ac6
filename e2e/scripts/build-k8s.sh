#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler from the
# k8s.io/kubernetes Go module, through the Go module proxy, and caches them
# under $SLUICE_CACHE/k8s/<version>/bin. Go is only the build tool here.
#
# `go install k8s.io/kubernetes/cmd/...@vX` is refused because the module has
# `replace` lines for its staging modules, so (as kubernetes-sigs/scheduler-plugins
# does) we make a wrapper module that requires k8s.io/kubernetes and replaces
# every staging module k8s.io/X with its published k8s.io/X v0.<minor>.<patch>.
#
# Usage: build-k8s.sh [version]   (default: $SLUICE_K8S_VERSION or v1.34.4)
# Env:   SLUICE_CACHE (default ~/.cache/sluice), SLUICE_GO_PARALLEL (default 2)
set -euo pipefail

VERSION="${1:-${SLUICE_K8S_VERSION:-v1.34.4}}"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
DEST="$CACHE/k8s/$VERSION"
BIN="$DEST/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)

have_all() {
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
  [ -f "$DEST/BUILD_OK" ]
}
if have_all; then
  echo "k8s $VERSION: cached in $BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build-k8s: 'go' not found; install Go >= 1.24 (apt-get install golang-go, or a newer toolchain)" >&2; exit 1; }

mkdir -p "$DEST"
# One build at a time per version, even if two test runs race.
exec 9>"$DEST/.lock"
flock 9
if have_all; then echo "k8s $VERSION: cached in $BIN"; exit 0; fi

start=$(date +%s)
WORK="$DEST/wrapper"
rm -rf "$WORK"
mkdir -p "$WORK" "$BIN"
cd "$WORK"

export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

# The upstream go.mod lists the staging modules as `replace k8s.io/X => ./staging/src/k8s.io/X`.
upstream_gomod=$(go mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
[ -f "$upstream_gomod" ] || { echo "build-k8s: cannot download k8s.io/kubernetes@$VERSION" >&2; exit 1; }
staging_version="v0.${VERSION#v1.}"

{
  echo "module sluice.dev/k8s-build"
  echo
  # Same go directive as upstream (the toolchain must be at least that).
  grep -E '^go [0-9.]+$' "$upstream_gomod"
  echo
  echo "require k8s.io/kubernetes $VERSION"
  echo
  echo "replace ("
  grep -oE '^\s*k8s\.io/[a-zA-Z0-9._/-]+ => \./staging/src/k8s\.io/[a-zA-Z0-9._/-]+' "$upstream_gomod" \
    | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod

cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO

# Take the upstream module's own versions of every dependency (its go.mod
# pins them); `go mod tidy` then fills in go.sum.
go mod tidy -e >/dev/null 2>"$DEST/tidy.log" || true
go get "k8s.io/kubernetes@$VERSION"

minor="${VERSION#v1.}"; minor="${minor%%.*}"
pkg=k8s.io/component-base/version
ldflags="-s -w \
 -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor \
 -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=$VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

go build -trimpath -tags tools -p "${SLUICE_GO_PARALLEL:-2}" -ldflags "$ldflags" -o "$BIN/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler

end=$(date +%s)
echo "built k8s $VERSION in $((end - start))s" | tee "$DEST/BUILD_OK"
du -sh "$BIN" | tee -a "$DEST/BUILD_OK"
