#!/usr/bin/env bash
# The first run on a machine with a CUDA GPU, in one command that fits a short loan of one
# (docs/gpu.md, "The first GPU run"): correctness first, then speed, each stage under a time
# limit of its own and all of them within --budget seconds, so whatever finished is kept.
#
#   bash scripts/gpu_first_run.sh --prepare
#       On the machine you start from (no GPU needed): copy the Fashion-MNIST files into
#       .fmnist/ (ignored through .git/info/exclude) so they travel with the working tree to a
#       GPU machine that cannot download them.
#   bash scripts/gpu_first_run.sh [--budget SECONDS]        (default 480)
#       On the GPU machine: the environment; pytest tests/test_gpu.py; then
#       experiments/bench_gpu.py's parts (per-trial, default preset, paper preset's sample),
#       each in its own process and time limit. Writes experiments/results/bench_gpu.md and,
#       into $OUT when that is set (else runs/gpu-first-run/), first_run.log, test_gpu.xml and
#       a copy of bench_gpu.md.
#       Status: the tests' when they failed, else 1 when a bench part failed or was stopped,
#       else 0. Without a CUDA GPU it says so and stops (status 3) unless --allow-cpu is
#       given (then every GPU test skips and each bench part says it measured nothing: a
#       check of this script itself).
#   bash scripts/gpu_first_run.sh --paper [--budget SECONDS]  (default 3000)
#       The paper preset end to end, timed (needs far more GPU time than the run above).
#
# Data: Fashion-MNIST is read from /usr/share/datasets/fashion-mnist, else from .fmnist/
# (linked into a throw-away $XDG_CACHE_HOME), never downloaded. The tests need only
# scikit-learn's digits. Nothing here needs fvcore.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mode=first budget="" cpu=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) mode=prepare ;;
    --paper) mode=paper ;;
    --allow-cpu) cpu=1 ;;
    --budget) budget=${2:?--budget needs a number of seconds}; shift ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_first_run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$budget" in ''|*[!0-9]*) [ -z "$budget" ] || { echo "--budget: whole seconds" >&2; exit 2; } ;; esac

if [ "$mode" = prepare ]; then
  source=/usr/share/datasets/fashion-mnist
  [ -f "$source/train-images-idx3-ubyte.gz" ] || source=$(python3 -c \
    'from tinyformula.data.fashion_mnist import locate; print(locate(download=False)["train_images"].parent)') \
    || { echo "no Fashion-MNIST here to carry" >&2; exit 2; }
  mkdir -p .fmnist && cp "$source"/*-ubyte* .fmnist/
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  grep -qx '/.fmnist/' "$exclude" 2>/dev/null || echo '/.fmnist/' >>"$exclude"
  git check-ignore -q .fmnist || { echo ".fmnist/ is not ignored by git" >&2; exit 2; }
  echo "copied $(ls .fmnist | wc -l) files ($(du -sh .fmnist | cut -f1)) from $source to .fmnist/"
  echo "now, on the GPU machine: bash scripts/gpu_first_run.sh   (carry .fmnist, timeout 600 s)"
  exit 0
fi

start=$(date +%s)
[ -n "$budget" ] || budget=$([ "$mode" = paper ] && echo 3000 || echo 480)
out=${OUT:-$root/runs/gpu-first-run}
mkdir -p "$out"
log=$out/first_run.log
exec > >(tee -a "$log") 2>&1
left() { echo $(( budget - ($(date +%s) - start) )); }
say() { echo "== [$(( $(date +%s) - start )) s] $*"; }
save() { [ -f experiments/results/bench_gpu.md ] && cp experiments/results/bench_gpu.md "$out/" || true; }
# stage NAME CAP COMMAND...: COMMAND under min(CAP, what is left) seconds; skipped under 20 s.
stage() {
  local name=$1 cap=$2 limit status; shift 2
  limit=$(left); [ "$limit" -gt "$cap" ] && limit=$cap
  if [ "$limit" -lt 20 ]; then say "$name: skipped, ${limit} s left of the ${budget} s budget"; return 124; fi
  say "$name: up to $limit s"
  # timeout signals the whole process group: a stage's worker processes end with it.
  timeout --kill-after=20 "$limit" "$@"; status=$?
  [ $status -eq 124 ] || [ $status -eq 137 ] && say "$name: stopped at its time limit"
  say "$name: exit $status"; save
  return $status
}

say "environment"
nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version --format=csv || true
python3 - "$cpu" <<'EOF' || { say "no CUDA GPU visible: nothing to run here (--allow-cpu checks this script)"; exit 3; }
import os, platform, sys, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda",
      torch.version.cuda, "| GPUs visible to torch:", torch.cuda.device_count(),
      "| CPU cores", os.cpu_count(), "| CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
for name in ("fvcore", "pynvml", "dask", "pytest_timeout"):
    try:
        __import__(name)
        print(f"  {name}: present")
    except ImportError:
        print(f"  {name}: missing")
sys.exit(0 if torch.cuda.is_available() or sys.argv[1] == "1" else 1)
EOF

data=ok
if [ -f .fmnist/train-images-idx3-ubyte.gz ] || [ -f .fmnist/train-images-idx3-ubyte ]; then
  # The loader looks in /usr/share/datasets/fashion-mnist first, then in this cache.
  export XDG_CACHE_HOME=${TMPDIR:-/tmp}/tinyformula-first-run-cache
  mkdir -p "$XDG_CACHE_HOME/tinyformula"
  ln -sfn "$root/.fmnist" "$XDG_CACHE_HOME/tinyformula/fashion-mnist"
fi
python3 -c 'from tinyformula.data.fashion_mnist import locate
print("Fashion-MNIST:", locate(download=False)["train_images"].parent)' || {
  data=missing
  say "Fashion-MNIST missing: run 'bash scripts/gpu_first_run.sh --prepare' where it is and carry .fmnist"
}

if [ "$mode" = paper ]; then
  [ $data = ok ] || exit 2
  rm -rf runs/gpu-paper
  stage "paper preset end to end" "$budget" \
    python3 -m tinyformula fit --preset paper --device cuda --out runs/gpu-paper
  status=$?
  say "paper preset: $(( $(date +%s) - start )) s wall in all (runs/gpu-paper), exit $status"
  exit $status
fi

timeout_flag=()
python3 -c 'import pytest_timeout' 2>/dev/null && timeout_flag=(--timeout 60)
# -v: each test's outcome is in the log as it ends, even if the stage is stopped.
stage "pytest tests/test_gpu.py" 150 python3 -m pytest tests/test_gpu.py -v -p no:cacheprovider \
  -rfEs --durations=12 "${timeout_flag[@]}" --junitxml="$out/test_gpu.xml"
tests=$?
bench=0
if [ $data = ok ]; then
  stage "bench_gpu per-trial" 100 python3 experiments/bench_gpu.py --parts per-trial || bench=1
  stage "bench_gpu default preset" 80 python3 experiments/bench_gpu.py --parts default || bench=1
  stage "bench_gpu paper preset (sample)" 100000 python3 experiments/bench_gpu.py --parts paper \
    || bench=1
else
  bench=1
fi
save
say "done: tests exit $tests, bench parts $([ $bench = 0 ] && echo ok || echo 'not all done');" \
  "results in experiments/results/bench_gpu.md and $out"
[ $tests -ne 0 ] && exit $tests
exit $bench
