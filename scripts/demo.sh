#!/usr/bin/env bash
# The main job on a fresh machine: install, then the README's quick start end to end: search
# for a Tiny Formula on Fashion-MNIST, ask it for 100 MFLOPs at 224 px, build that model, train
# it briefly with the final recipe, export it to ONNX (checked against torch) and time it.
# Usage: bash scripts/demo.sh [PRESET]
#   smoke (the default): about 5 minutes on an idle 2-core CPU, most of it the short training of
#     the 119 px model (estimated from CPU time measured on a loaded machine; about a minute is
#     the search); default: the full default search, about 15 minutes.
# Everything is written under runs/demo/ (run it again: the search answers at once).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-smoke}"
out="runs/demo"
bash scripts/setup.sh export
mkdir -p "$out"
started=$SECONDS
step() { echo; echo "\$ $*"; "$@"; }
step tinyformula fit --preset "$preset" --out "$out/search"
step tinyformula predict --formula "$out/search/formula.json" --budget 100M --resolution-base 224
step tinyformula build --formula "$out/search/formula.json" --budget 100M --resolution-base 224 \
    --out "$out/model.pt"
step tinyformula train --recipe final --model "$out/model.pt" --data fashion-mnist --epochs 1 \
    --train-size 2048 --val-size 1000 --out "$out/final"
step tinyformula export "$out/final" --format onnx --out "$out/model.onnx"
step tinyformula latency --model "$out/final/model.pt" --quick
echo
echo "demo done in $((SECONDS - started)) s (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
