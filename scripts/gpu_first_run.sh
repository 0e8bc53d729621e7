#!/usr/bin/env bash
# The first run on a machine with a CUDA GPU (docs/gpu.md): correctness, then speed, then
# (with --paper) the paper preset end to end, timed. Usage:
#   bash scripts/gpu_first_run.sh [--paper] [bench_gpu.py options, e.g. --sample 8]
# Writes experiments/results/bench_gpu.md; the paper run goes to runs/gpu-paper.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
paper=0
if [ "${1:-}" = "--paper" ]; then paper=1; shift; fi
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider
python3 experiments/bench_gpu.py "$@"
if [ "$paper" = 1 ]; then
  start=$(date +%s)
  python3 -m tinyformula fit --preset paper --device cuda --out runs/gpu-paper
  echo "paper preset: $(( $(date +%s) - start )) s wall (runs/gpu-paper)"
fi
