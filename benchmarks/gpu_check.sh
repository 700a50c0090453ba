#!/usr/bin/env bash
# The GPU check in one command (at most 8 minutes): see benchmarks/gpu_check.py.
#   bash benchmarks/gpu_check.sh [--out benchmarks/gpu_check.json]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run gpu_check.py --dry on a CPU')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout -k 15 480 "$PY" benchmarks/gpu_check.py --budget-s 420 "$@"
