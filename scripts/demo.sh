#!/usr/bin/env bash
# The main job on a fresh machine: install, search for a Tiny Formula on Fashion-MNIST, predict.
# Usage: bash scripts/demo.sh [PRESET]   (smoke: about a minute; default: well under 30 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-smoke}"
bash scripts/setup.sh
tinyformula fit --base efficientnet_b0 --data fashion-mnist --preset "$preset" --out "runs/$preset"
tinyformula predict --formula "runs/$preset/formula.json" --flops 0.25
