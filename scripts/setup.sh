#!/usr/bin/env bash
# Install tinyformula and what it needs on a fresh machine. Usage: bash scripts/setup.sh [EXTRAS]
# EXTRAS is a pip extras list such as "test,dask" (default: none).
set -euo pipefail
cd "$(dirname "$0")/.."

# torch first. An installed torch within the supported range (a CUDA build, say) is kept;
# only where none is, the pinned CPU-sized one is installed (a bare torch requirement would
# pull a multi-GB CUDA build).
if python3 - <<'PY'
import sys
try:
    import torch
except ImportError:
    sys.exit(1)
major, minor = (int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
sys.exit(0 if (2, 1) <= (major, minor) < (3, 0) else 1)
PY
then
  echo "keeping the installed torch $(python3 -c 'import torch; print(torch.__version__)')"
else
  python3 -m pip install -q torch==2.13.0
fi
python3 -m pip install -q -e ".${1:+[$1]}"

# Real Fashion-MNIST, the default dataset (Debian's package; needs root and apt). Without it,
# tinyformula tries the official download and says how to get the files when offline.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null \
    && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
