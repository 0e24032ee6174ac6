#!/usr/bin/env bash
# Validates OpenLineage events (one JSON per line) against the official schemas
# vendored in engine/openlineage/ (see its README). jsonschema is installed once
# from PyPI, with its format checkers, into $SLUICE_CACHE/jsonschema-formats-<version>.
#   scripts/openlineage-validate.sh install          (install only)
#   scripts/openlineage-validate.sh EVENTS.jsonl
set -euo pipefail

JSONSCHEMA_VERSION=4.26.0
SLUICE_CACHE=${SLUICE_CACHE:-$HOME/.cache/sluice}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$SLUICE_CACHE/jsonschema-formats-$JSONSCHEMA_VERSION

if [[ ! -f $dir/.installed ]]; then
    echo "installing jsonschema $JSONSCHEMA_VERSION into $dir" >&2
    rm -rf "$dir.tmp.$$"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --target "$dir.tmp.$$" "jsonschema[format-nongpl]==$JSONSCHEMA_VERSION"
    touch "$dir.tmp.$$/.installed"
    rm -rf "$dir"
    mv "$dir.tmp.$$" "$dir" 2>/dev/null || rm -rf "$dir.tmp.$$"
fi
[[ ${1:-} == install ]] && exit 0
PYTHONPATH=$dir exec python3 "$root/scripts/openlineage-validate.py" "$root/engine/openlineage" "$@"
