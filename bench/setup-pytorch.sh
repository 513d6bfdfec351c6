#!/usr/bin/env bash
# Installs the PyTorch builds bench/train-speed.ts measures flow against, in the same run:
#  - Debian's python3-torch (1.13) for /usr/bin/python3, through apt;
#  - a newer CPU wheel, when this machine has one (the argument, else the newest torch-*+cpu-*.whl in pip's
#    find-links directories), in .bench-venv/ at the repository root (ignored by git), which the bench finds.
# Usage: bench/setup-pytorch.sh [path/to/torch-X+cpu-....whl]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
fi
echo "Debian: $(/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)')"

wheel="${1:-}"
if [ -z "$wheel" ]; then
  dirs=$( (python3 -m pip config list 2>/dev/null || true) | sed -n "s/^[a-z:.]*find-links='\(.*\)'$/\1/p"; echo "${PIP_FIND_LINKS:-}")
  for dir in $dirs; do
    [ -d "$dir" ] || continue
    for candidate in "$dir"/torch-*+cpu-*.whl; do [ -e "$candidate" ] && echo "$candidate"; done
  done | sort -V | tail -n 1 > .bench-wheel || true
  wheel=$(cat .bench-wheel); rm -f .bench-wheel
fi
if [ -z "$wheel" ]; then
  echo "no newer CPU torch wheel found on this machine: the bench compares with Debian's build only"
  exit 0
fi
# The venv sees the interpreter's own packages (typing_extensions, sympy, ...), so the wheel needs no index.
python3 -m venv --system-site-packages .bench-venv
.bench-venv/bin/pip install -q "$wheel" || .bench-venv/bin/pip install -q --no-deps "$wheel"
echo ".bench-venv: $(.bench-venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
