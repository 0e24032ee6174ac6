#!/usr/bin/env bash
# Creates (idempotently) the Python venv with Apache Flink (PyFlink) used as the
# reference implementation for Sluice golden tests and benchmarks.
# The venv lives outside the repo: $HOME/.cache/sluice/flink-venv (override with
# SLUICE_FLINK_VENV). Needs Python 3.9-3.12 and a Java 17 runtime on PATH.
set -euo pipefail

FLINK_VERSION="${SLUICE_FLINK_VERSION:-2.3.0}"
VENV="${SLUICE_FLINK_VENV:-$HOME/.cache/sluice/flink-venv}"
PYTHON="${PYTHON:-python3}"

if ! command -v java >/dev/null 2>&1; then
  echo "setup.sh: java not found on PATH (Flink needs Java 11/17)" >&2
  exit 1
fi

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$FLINK_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(0 if version("apache-flink") == sys.argv[1] else 1)
PY
then
  echo "setup.sh: apache-flink $FLINK_VERSION already installed in $VENV"
  exit 0
fi

mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "apache-flink==$FLINK_VERSION" psutil
"$VENV/bin/python" -c "import pyflink, importlib.metadata as m; print('setup.sh: installed apache-flink', m.version('apache-flink'), 'at', pyflink.__file__)"
