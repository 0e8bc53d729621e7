#!/usr/bin/env bash
# Install tinyformula and what it needs on a fresh machine. Usage: bash scripts/setup.sh [EXTRAS]
# EXTRAS is a pip extras list such as "test,dask" (default: none).
set -euo pipefail
cd "$(dirname "$0")/.."

# torch first, pinned: a bare torch requirement would pull a multi-GB CUDA build.
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".${1:+[$1]}"

# Real Fashion-MNIST, the default dataset (Debian's package; needs root and apt). Without it,
# tinyformula tries the official download and says how to get the files when offline.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null \
    && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
