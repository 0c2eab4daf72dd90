#!/usr/bin/env bash
# Create or update the project's virtual environment at .venv/ (repo root).
#
# CPU-only Linux: torch is pinned to the local CPU build 2.13.0, because any other
# torch request pulls several GB of CUDA wheels. With an NVIDIA GPU present, the
# venv sees the system site-packages so a user's own CUDA torch is kept.
# Re-running is cheap: nothing is reinstalled when pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && .venv/bin/python -c "import actionimages" 2>/dev/null; then
  exit 0
fi
has_gpu=0
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && has_gpu=1
if [ ! -x .venv/bin/python ]; then
  if [ "$has_gpu" = 1 ]; then
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if [ "$has_gpu" = 1 ]; then
    .venv/bin/python -m pip install -q torch
  else
    .venv/bin/python -m pip install -q "torch==2.13.0"
  fi
fi
.venv/bin/python -m pip install -q -e ".[dev]"
touch "$stamp"
