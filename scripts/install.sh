#!/usr/bin/env bash
# Create .venv and install the toolkit with its test extras, at the versions of requirements.lock
# (Linux x86-64; what CI runs and the README's numbers were made with). SAFEERASER_LOCK=0, or another
# platform, installs the newest versions requirements.txt allows instead; then a machine without a
# GPU pins torch and torchvision as a pair that loads together (constraints-cpu.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
constraint=()
if [ "${SAFEERASER_LOCK:-1}" != 0 ] && [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
    constraint=(-c requirements.lock)
    echo "installing the locked versions (requirements.lock; SAFEERASER_LOCK=0 for the newest allowed)"
elif ! command -v nvidia-smi >/dev/null 2>&1; then
    constraint=(-c constraints-cpu.txt)
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "${constraint[@]}" -e ".[dev]"
# Which lock this venv was made from: tests check the installed versions against it.
if [ "${#constraint[@]}" -gt 0 ] && [ "${constraint[1]}" = requirements.lock ]; then
    sha256sum requirements.lock | cut -d' ' -f1 > .venv/installed-from-lock
else
    rm -f .venv/installed-from-lock
fi
# Debian's Chromium, for the HTML report's browser test (tests/pipeline/browser.py), where it can be had:
# as root on a Debian-based machine. Elsewhere that test is skipped (CI requires it: .ci/run).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium (the HTML report's browser test)"
    (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 &&
        apt-get install -y -q chromium >/dev/null 2>&1; }) || echo "chromium could not be installed: its test will skip"
fi
