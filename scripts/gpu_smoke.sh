#!/usr/bin/env bash
# welavae's GPU smoke test: under thirteen minutes on one GPU, results as files (docs/gpu.md).
#
#   scripts/gpu_smoke.sh [OUT_DIR] [gpu_smoke.py options, e.g. --device cuda:1 --tf32 --only bench,layouts]
#
# Python: $WELAVAE_PYTHON if set; else the repository's .venv if its torch sees a GPU; else .venv-gpu,
# created on first use. .venv-gpu reuses the machine's own torch when that one sees a GPU
# (--system-site-packages: GPU images ship one); otherwise it installs torch==2.13.0 from PyPI, whose
# Linux x86_64 wheel is the CUDA build (the Makefile's .venv is meant for the CPU). No other network access.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu_smoke_out}"
[ $# -gt 0 ] && shift

sees_gpu() { "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; }

PY="${WELAVAE_PYTHON:-}"
if [ -z "$PY" ] && [ -x .venv/bin/python ] && sees_gpu .venv/bin/python; then
  PY=.venv/bin/python
fi
if [ -z "$PY" ]; then
  if [ ! -x .venv-gpu/bin/python ]; then
    python3 -m venv --system-site-packages .venv-gpu
  fi
  if ! sees_gpu .venv-gpu/bin/python; then
    .venv-gpu/bin/pip install --quiet --index-url "${WELAVAE_TORCH_INDEX:-https://pypi.org/simple}" "torch==2.13.0"
  fi
  .venv-gpu/bin/python -c 'import welavae' 2>/dev/null || .venv-gpu/bin/pip install --quiet -e .
  PY=.venv-gpu/bin/python
fi
"$PY" -c 'import torch; print(f"gpu_smoke: torch {torch.__version__}, CUDA {torch.version.cuda}, "
           f"{torch.cuda.device_count()} GPU(s)")'
exec timeout 780 "$PY" scripts/gpu_smoke.py --out "$OUT" "$@"
