"""experiments/bench_gpu.py's arithmetic, on the CPU: what it reports must mean what it says
before a GPU ever runs it (steady-state rates, trials per hour, honest worker counts, failed
trials never counted as graphed)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tinyformula.execution.jobs import TrialResult, TrialState

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "experiments" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(state="ok", graphed=True, images=1280, seconds=0.5, start=100.0):
    return TrialResult(0, TrialState(state), graphed=graphed, steady_images=images,
                       steady_seconds=seconds, steady_start=start)


def test_trials_per_hour_and_the_whole_search(bench):
    assert bench.trials_per_hour(16, 120.0) == pytest.approx(480.0)
    assert bench.search_minutes(240, 480.0) == pytest.approx(30.0)
    assert bench.trials_per_hour(3, 0.0) == 0.0 and bench.search_minutes(10, 0.0) == float("inf")


def test_worker_counts_are_labelled_per_gpu_and_in_all(bench):
    assert bench.workers_label({0: 4, 1: 4}) == "4 per GPU x 2 GPUs = 8 at once"
    assert bench.workers_label({0: 6}) == "6 per GPU x 1 GPU = 6 at once"
    assert bench.workers_label({0: 3, 1: 2}) == "3 + 2 on 2 GPUs = 5 at once"


def test_failed_trials_are_not_graphed(bench):
    results = [result(), result(graphed=False), result("oom", graphed=False),
               result("failed", graphed=True), result("diverged")]
    assert bench.outcomes(results) == {"graphed": 1, "eager": 1, "not ok": 3}


def test_rates_are_the_steady_state_of_ok_trials(bench):
    results = [result(images=1000, seconds=0.5, start=10.0),
               result(images=3000, seconds=1.0, start=10.25),
               result("oom", images=0, seconds=0.0),
               result("failed", images=99999, seconds=0.1)]
    assert bench.per_trial_rate(results) == pytest.approx(2500.0)  # median of 2000, 3000
    assert bench.windows(results) == [(10.0, 0.5, 1000), (10.25, 1.0, 3000)]
    from tinyformula import aggregate_rate

    assert aggregate_rate(bench.windows(results)) == pytest.approx(4000 / 1.25)
    assert bench.speedup(2000.0, 5000.0) == "2.50x" and bench.speedup(0.0, 1.0) == "-"


def test_preset_rows_say_what_was_timed(bench):
    row = {"preset": "paper", "total": 240, "workers": "4 per GPU x 1 GPU = 4 at once",
           "per_trial": 5000.0, "aggregate": 18000.0, "per_hour": 480.0, "minutes": 30.0,
           "sample": 16, "wall": 120.0,
           "outcomes": {"graphed": 15, "eager": 1, "not ok": 0}, "notes": ["GPU memory: x"]}
    lines = bench.preset_rows([row])
    assert "| paper (240 trials) | 4 per GPU x 1 GPU = 4 at once | 5,000 | 18,000 | 480 | " \
           "30.0 min | 16 trials in 120 s: 15 graphed, 1 eager, 0 not ok |" == lines[2]
    assert lines[3] == "  note: GPU memory: x"


def test_without_cuda_it_says_so_and_measures_nothing():
    done = subprocess.run([sys.executable, str(BENCH)], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                            "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 1 and "no CUDA GPU" in done.stdout
