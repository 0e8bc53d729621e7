"""The whole search on real Fashion-MNIST at tiny sizes: fit, predict, resume, Dask.

CI installs Debian's dataset-fashion-mnist, so these always run there.
"""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tinyformula import load_run, search

FASHION = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not FASHION.is_dir(), reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")




@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke preset, as the README runs it (shared by the tests below)."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    search("efficientnet_b0", "fashion-mnist", out=out, preset="smoke", progress=False,
           log=lambda message: None)
    return out


def test_smoke_search_leaves_a_complete_run_folder(smoke_run):
    run = load_run(smoke_run)
    for name in ("trials.sqlite", "trials.csv", "frontier.csv", "formula.json"):
        assert (smoke_run / name).is_file(), name
    header = (smoke_run / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"r", "d", "w", "c", "resolution", "flops", "params", "top1", "status"} <= set(header)
    assert run.finished and (run.trials["status"] == "ok").all()
    assert len(run.frontier) >= 3
    # Real learning: the best candidate is far above chance (10%) on 10 classes.
    assert run.trials["top1"].max() > 0.5
    assert run.formula.num_classes == 10 and run.formula.resolution_base == 32
    assert run.seed_spread["pairs"] >= 1


def test_fit_json_summary_and_predict_with_the_fitted_formula(smoke_run, cli):
    code, out, _ = cli("fit", "--preset", "smoke", "--out", str(smoke_run), "--json")
    assert code == 0  # a finished search: nothing is retrained, the summary is printed
    summary = json.loads(out)
    assert len(summary["frontier"]) >= 3 and [b["c"] for b in summary["budgets"]] == [
        0.06, 0.13, 0.25, 0.5]
    code, out, _ = cli("predict", "--formula", str(smoke_run / "formula.json"),
                       "--flops", "0.25", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["resolution"] == int(32 * record["r"] + 1e-9)
    # The summary answers in the search's unit too: what c = 1 is, and each budget on its own.
    assert summary["unit"] == "FLOPs" and summary["reference"] > 0
    code, out, _ = cli("fit", "--preset", "smoke", "--out", str(smoke_run))
    assert "c = 1 is" in out and "FLOPs" in out


def test_rerun_trains_nothing_twice_and_reuses_the_formula(smoke_run, monkeypatch):
    from tinyformula import TinyFormula

    before = load_run(smoke_run).trials
    stored = (smoke_run / "formula.json").read_bytes()

    def refit(*args, **kwargs):
        raise AssertionError("a finished search refitted its formula")

    monkeypatch.setattr(TinyFormula, "fit", refit)
    said = []
    search("efficientnet_b0", "fashion-mnist", out=smoke_run, preset="smoke", progress=False,
           log=said.append)
    after = load_run(smoke_run).trials
    assert after["finished_at"].tolist() == before["finished_at"].tolist()
    assert (smoke_run / "formula.json").read_bytes() == stored
    assert any("reusing it" in message for message in said)
    monkeypatch.undo()
    # Another fit setting (unconstrained GPs) refits.
    other = search("efficientnet_b0", "fashion-mnist", out=smoke_run, preset="smoke",
                   progress=False, monotone=False, log=lambda message: None)
    assert other.formula.monotone is False
    search("efficientnet_b0", "fashion-mnist", out=smoke_run, preset="smoke", progress=False,
           log=lambda message: None)  # back to the default, as the other tests expect


def test_resume_after_interruption_gives_the_same_formula(smoke_run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(smoke_run, partial)
    (partial / "formula.json").unlink()
    with sqlite3.connect(partial / "trials.sqlite") as db:
        db.execute("UPDATE trials SET status='pending', top1=NULL WHERE id >= 8")
    resumed = search("efficientnet_b0", "fashion-mnist", out=partial, preset="smoke",
                     progress=False, log=lambda message: None)
    original = load_run(smoke_run)
    assert resumed.trials["top1"].tolist() == original.trials["top1"].tolist()
    assert resumed.formula.recommend(0.25) == original.formula.recommend(0.25)


def test_keyboard_interrupt_keeps_finished_trials(tmp_path, monkeypatch, cli):
    import tinyformula.execution.executors as executors

    calls = {"n": 0}
    real = executors.run_trial

    def interrupt_on_third(job, threads=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(job, threads)

    monkeypatch.setattr(executors, "run_trial", interrupt_on_third)
    out = tmp_path / "run"
    code, _, err = cli("fit", "--preset", "smoke", "--trials", "4", "--train-size", "128",
                       "--workers", "1", "--out", str(out))
    assert code == 130 and "Run the same command again" in err
    statuses = [t for t in load_run(out).trials["status"]]
    assert statuses.count("ok") == 2 and statuses.count("pending") == len(statuses) - 2


def test_dask_local_cluster_runs_the_same_candidates(tmp_path):
    pytest.importorskip("dask.distributed")
    options = dict(preset="smoke", trials=3, train_size=128, progress=False,
                   log=lambda message: None)
    runs = []
    for name, executor in (("local", "local"), ("dask", "dask")):
        try:
            search("efficientnet_b0", "fashion-mnist", out=tmp_path / name, executor=executor,
                   workers=2, **options)
        except Exception as error:  # fewer than 3 frontier points, or all at chance, is fine
            assert "Pareto-optimal" in str(error) or "at chance" in str(error)
        runs.append(load_run(tmp_path / name).trials)
    local, dask = runs
    assert local[["r", "d", "w", "seed"]].equals(dask[["r", "d", "w", "seed"]])
    assert (dask["status"] == "ok").all()
    # One torch thread per worker in both: the same numbers, bit for bit.
    assert local["top1"].tolist() == dask["top1"].tolist()


@pytest.mark.parametrize("argv, message", [
    (["--trials", "0"], "--trials: must be a whole number from 1 to 100,000"),
    (["--c-range", "0.5", "0.1"], "LO < HI"),
    (["--c-range", "0", "1"], "LO < HI"),
    (["--data", "mnist-fancy"], "unknown dataset"),
    (["--base", "vgg"], "unknown base"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler"),
])
def test_fit_bad_input(argv, message, cli, tmp_path):
    code, out, err = cli("fit", "--preset", "smoke", "--out", str(tmp_path / "r"), *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_fit_refuses_a_file_or_another_search_and_leaves_them_alone(smoke_run, tmp_path, cli):
    a_file = tmp_path / "file"
    a_file.write_text("precious")
    code, _, err = cli("fit", "--preset", "smoke", "--out", str(a_file))
    assert code == 2 and "is a file" in err and a_file.read_text() == "precious"
    before = (smoke_run / "trials.sqlite").read_bytes()
    code, _, err = cli("fit", "--preset", "smoke", "--seed", "7", "--out", str(smoke_run))
    assert code == 2 and "holds a different search" in err
    assert (smoke_run / "trials.sqlite").read_bytes() == before


def test_fit_refuses_a_corrupt_store(tmp_path, cli):
    out = tmp_path / "run"
    out.mkdir()
    (out / "trials.sqlite").write_bytes(b"garbage" * 1000)
    code, _, err = cli("fit", "--preset", "smoke", "--out", str(out))
    assert code == 2 and "not a readable trials database" in err
    assert (out / "trials.sqlite").read_bytes() == b"garbage" * 1000


def test_a_dask_worker_killed_mid_trial_is_replaced_and_its_trial_rerun(tmp_path):
    """kill -9 of a Dask worker while it trains: its nanny starts a new one, the scheduler runs
    the trial again, and every score equals a local run's, bit for bit."""
    distributed = pytest.importorskip("dask.distributed")
    import os
    import signal
    import threading
    import time

    options = dict(preset="smoke", trials=3, train_size=1024, progress=False,
                   log=lambda message: None)
    local = tmp_path / "local"
    try:
        search("efficientnet_b0", "fashion-mnist", out=local, workers=1, **options)
    except Exception as error:  # too few frontier points is fine: the trials are what count
        assert "Pareto-optimal" in str(error) or "at chance" in str(error)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        killed = []

        def kill_a_busy_worker():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                busy = [address for address, tasks in client.processing().items() if tasks]
                if busy:
                    pids = client.run(os.getpid, workers=busy[:1])
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
                time.sleep(0.2)

        killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
        killer.start()
        try:
            search("efficientnet_b0", "fashion-mnist", out=tmp_path / "dask", executor="dask",
                   scheduler=cluster.scheduler_address, **options)
        except Exception as error:
            assert "Pareto-optimal" in str(error) or "at chance" in str(error)
        killer.join()
    assert killed, "no worker was seen busy: the trials ended before one could be killed"
    ours, theirs = load_run(local).trials, load_run(tmp_path / "dask").trials
    assert (theirs["status"] == "ok").all()
    assert ours["top1"].tolist() == theirs["top1"].tolist()
