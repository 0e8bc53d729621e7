"""experiments/bench_gpu.py's arithmetic, on the CPU: what it reports must mean what it says
before a GPU ever runs it (steady-state rates, trials per hour, honest worker counts, failed
trials never counted as graphed)."""

import importlib.util
import os
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


def test_each_part_replaces_its_own_section_and_keeps_the_others(bench, tmp_path):
    path = tmp_path / "bench_gpu.md"
    bench.write_part(path, "paper", "## paper\n\nold paper figures")
    bench.write_part(path, "per-trial", "## per-trial\n\nrates")
    text = path.read_text()
    assert text.startswith(bench.HEADER) and text.count("# bench_gpu") == 1
    assert text.index("rates") < text.index("old paper figures")  # in PARTS order
    bench.write_part(path, "paper", "## paper\n\nnew paper figures")
    text = path.read_text()
    assert "old paper" not in text and "new paper figures" in text and "rates" in text
    assert text.count("<!-- part: paper -->") == 1 and not list(tmp_path.glob("*.part"))


def test_a_part_stopped_midway_says_so_instead_of_keeping_old_figures(bench, tmp_path):
    path = tmp_path / "bench_gpu.md"
    bench.write_part(path, "default", "## default\n\n| default | 12,345 |")
    bench.write_part(path, "default", bench.unfinished("default", ["bench_gpu.py"]))
    text = path.read_text()
    assert "12,345" not in text and "**Not finished**" in text and "`python bench_gpu.py`" in text
    assert text.count("<!-- part: default -->") == text.count("<!-- end: default -->") == 1


def test_the_untimed_round_is_a_short_copy_of_the_same_trial(bench):
    from tinyformula import DataSource, Scale, TrainConfig, TrialJob

    job = TrialJob(id=7, base="efficientnet_b0", scale=Scale(1.0, 0.5, 0.5), resolution_base=32,
                   data=DataSource("fashion-mnist", validation=10000),
                   train=TrainConfig(train_size=50000, epochs=5, batch_size=128, seed=3))
    short = bench.warm_up_job(job)
    assert (short.id, short.scale, short.data, short.train.batch_size, short.train.seed) == \
        (job.id, job.scale, job.data, 128, 3)
    assert short.train.train_size * short.train.epochs == 128 * bench.WARM_UP_STEPS
    assert short.train.bn_recalibrate == 0 and short.train.val_size == 128
    tiny = bench.warm_up_job(TrialJob(**{**job.__dict__, "train": TrainConfig(train_size=300)}))
    assert tiny.train.train_size == 300  # never more than the trial itself


def test_arguments_choose_parts_and_refuse_nonsense(bench):
    args = bench.parse_args(["--parts", "paper", "per-trial", "--batches", "256"])
    assert args.parts == ["paper", "per-trial"] and args.batches == [256]
    assert bench.parse_args([]).parts == list(bench.PARTS)
    for bad in (["--parts", "huge"], ["--sample", "0"], ["--batches", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_the_first_run_script_refuses_bad_options_and_a_machine_without_cuda(tmp_path):
    script = ROOT / "scripts" / "gpu_first_run.sh"

    def run(*args):
        return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                              timeout=120, env={"PATH": os.environ["PATH"], "OUT": str(tmp_path),
                                                "CUDA_VISIBLE_DEVICES": "", "HOME": "/tmp"})

    usage = run("--help")
    assert usage.returncode == 0 and "--prepare" in usage.stdout and "--budget" in usage.stdout
    assert run("--bogus").returncode == 2 and run("--budget", "soon").returncode == 2
    done = run("--budget", "30")
    assert done.returncode == 3 and "no CUDA GPU visible" in done.stdout
    assert "| torch " in done.stdout and "GPUs visible to torch: 0" in done.stdout
    assert "no CUDA GPU visible" in (tmp_path / "first_run.log").read_text()


def test_a_part_stopped_midway_keeps_the_rows_it_finished(bench, tmp_path):
    path = tmp_path / "bench_gpu.md"
    rows = ["| candidate | batch |", "|---|---:|", "| B0 (32 px) | 128 |"]
    bench.write_part(path, "per-trial", bench.partial_body("per-trial", "Produced by x.\n",
                                                           "1 x GPU", "runs", rows, 8))
    text = path.read_text()
    assert "**Partial**: 8 more configuration(s)" in text and "| B0 (32 px) | 128 |" in text
    bench.write_part(path, "per-trial", "## per-trial\n\nall rows")
    assert "Partial" not in path.read_text()


def test_main_writes_each_part_as_it_goes(bench, tmp_path, monkeypatch):
    """main's flow on the CPU, with the GPU measurements faked: the partial section after
    each row, then the finished one, and a preset's row."""
    import torch

    monkeypatch.syspath_prepend(str(BENCH.parent))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")
    path, seen = tmp_path / "bench_gpu.md", []

    def per_trial(steps, images, batches, on_row):
        rows = ["| candidate | batch |", "|---|---:|"]
        for batch in batches:
            rows.append(f"| B0 | {batch} |")
            on_row(rows, len(batches) - (len(rows) - 2))
            seen.append(path.read_text())
        return rows

    row = {"preset": "default", "total": 66, "workers": "2 per GPU x 1 GPU = 2 at once",
           "per_trial": 1.0, "aggregate": 2.0, "per_hour": 3.0, "minutes": 4.0, "sample": 2,
           "wall": 5.0, "outcomes": {"graphed": 2, "eager": 0, "not ok": 0}, "notes": []}
    monkeypatch.setattr(bench, "measure_per_trial", per_trial)
    monkeypatch.setattr(bench, "measure_preset", lambda preset, sample, per_gpu: row)
    monkeypatch.setattr(bench, "load_dataset", lambda name: None, raising=False)
    assert bench.main(["--parts", "per-trial", "default", "--batches", "128", "256",
                       "--out", str(path)]) == 0
    assert "**Partial**: 1 more" in seen[0] and "| B0 | 128 |" in seen[0]
    assert "**Partial**: 0 more" in seen[1] and "| B0 | 256 |" in seen[1]
    text = path.read_text()
    assert "Partial" not in text and "Not finished" not in text and "GPU: 1 x Fake GPU" in text
    assert "| B0 | 256 |" in text and "| default (66 trials) |" in text
