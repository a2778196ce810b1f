#!/usr/bin/env bash
# Create .venv and install the toolkit with its test extras. On a machine without a GPU the CPU
# build of torch is pinned by constraints-cpu.txt; a GPU machine skips the constraint.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
constraint=()
if ! command -v nvidia-smi >/dev/null 2>&1; then constraint=(-c constraints-cpu.txt); fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "${constraint[@]}" -e ".[dev]"
