"""Nothing breaks, nothing hangs (issues #15, #16): every input is checked before work starts,
every failure is one line with exit status 2, and faults keep the run folder's guarantees.

The fault tests use real mechanisms where this machine allows them: a small tmpfs for a full
disk and a read-only remount for read-only storage (both need root: skipped otherwise), and
real signals to a real ``fit`` subprocess on scikit-learn's digits.
"""

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyformula.core.errors import TinyFormulaError
from tinyformula.core.files import checksum as _checksum
from tinyformula.formula.estimator import TinyFormula

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- input checked before work starts ------------------------------------------------------------

LONG = "x" * 300


@pytest.mark.parametrize("argv, message", [
    (["flops", "--r", "1e308"], "r above 16 makes a 3584 px input"),
    (["flops", "--w", "1e5"], "--w: must be a finite number in (0, 16]"),
    (["flops", "--resolution-base", "100000000"],
     "--resolution-base: must be a whole number from 1 to 4,096"),
    (["predict", "--flops", "0.25", "--resolution-base", "100000000"], "from 1 to 4,096"),
    (["predict", "--flops", "0.25", "--num-classes", "10000000"], "--num-classes"),
    (["predict", "--flops", "1.0000001"], "c=1.0000001 asks"),
    (["fit", "--seed", str(2**63 - 1)], "--seed: must be a whole number from 0 to"),
    (["fit", "--seed", "-1"], "--seed: must be a whole number from 0 to"),
    (["fit", "--seed", "1" * 400], "--seed: must be"),
    (["fit", "--trials", "1000000000"], "--trials: must be a whole number from 1 to 100,000"),
    (["fit", "--workers", "100000"], "--workers: must be"),
    (["fit", "--executor", "dask", "--scheduler", "notanaddress"], "not an address like"),
    (["fit", "--executor", "dask", "--scheduler", "[::1"], "not an address like"),
    (["fit", "--executor", "dask", "--scheduler", "http://host:1"], "tcp:// or tls://"),
    (["fit", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"], "cannot reach"),
    (["fit", "--out", LONG], "longer than the 255 bytes"),
    (["fit", "--out", ""], "--out must name a folder"),
    (["fit", "--data", "digits", "--preset", "smoke", "--train-size", "64",
      "--c-range", "1e-6", "2e-6"],
     "no candidate can have c in 1e-06..2e-06"),
    (["fit", "--device", "cuda:99"], "--device cuda:99 asked for, but torch"),
    (["fit", "--device", "gpu"], "--device must be auto, cpu, cuda or cuda:N"),
])
def test_bad_input_is_refused_before_anything_is_written(argv, message, cli, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*argv)
    assert code == 2 and out == "", err
    assert one_line(err) and message in err, err
    assert list(tmp_path.iterdir()) == []


def _formula_file(tmp_path: Path, edit) -> Path:
    body = TinyFormula.builtin().to_dict()
    del body["checksum"]
    edit(body)
    body["checksum"] = _checksum(body)  # edited with care: the checksum alone passes it
    path = tmp_path / "formula.json"
    path.write_text(json.dumps(body))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda b: b.update(resolution_base=1e400), "resolution_base"),
    (lambda b: b["gp"]["r"].update(length_scale=1e-300), "length_scale"),
    (lambda b: b["gp"]["r"].update(alpha=[1.0]), "must match"),
    (lambda b: b.update(c_range=[0.1, 1e300]), "c_range"),
    (lambda b: b["frontier"].update(c=[-1.0] * len(b["frontier"]["c"])), "frontier.c"),
    (lambda b: b.update(base=["efficientnet_b0"]), "damaged"),
])
def test_a_formula_file_is_validated_not_only_checksummed(edit, message, tmp_path, cli):
    path = _formula_file(tmp_path, edit)
    code, out, err = cli("predict", "--flops", "0.25", "--formula", path)
    assert code == 2 and out == "" and one_line(err) and message in err, err
    assert "damaged" in err


def test_a_formula_whose_gp_leaves_the_multiplier_range_names_it(tmp_path, cli):
    path = _formula_file(tmp_path, lambda b: b["gp"]["r"].update(y_mean=900.0))
    code, _, err = cli("predict", "--flops", "0.25", "--formula", path)
    assert code == 2 and one_line(err) and "which is no network" in err


def test_a_binary_formula_file_is_one_line(tmp_path, cli):
    path = tmp_path / "formula.json"
    path.write_bytes(bytes(range(256)) * 4)
    code, out, err = cli("predict", "--flops", "0.25", "--formula", path)
    assert code == 2 and out == "" and one_line(err) and "not valid JSON" in err


def test_a_closed_stdout_is_refused_not_ignored():
    done = subprocess.run([sys.executable, "-m", "tinyformula.cli", "bases"], env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == 2 and "standard output is closed" in done.stderr


def test_workers_are_capped_by_trials_cores_and_memory(monkeypatch):
    from tinyformula.execution import resources as validate

    monkeypatch.setattr(validate, "usable_cores", lambda: 8)
    monkeypatch.setattr(validate, "available_memory", lambda: 3 * validate.WORKER_MEMORY_BYTES)
    assert validate.cap_workers(10_000, 12) == (3, "--workers 10000 capped at 3: 3.0 GB "
                                                   "available at 1 GB per worker")
    assert validate.cap_workers(10_000, 2)[0] == 2
    assert validate.cap_workers(None, 12) == (3, "")  # the default is capped silently
    assert validate.cap_workers(2, 12) == (2, "")
    monkeypatch.setattr(validate, "available_memory", lambda: None)
    assert validate.cap_workers(100, 50) == (8, "--workers 100 capped at 8: 8 usable core(s)")


# -- the store: failed trials, empty files, one search at a time ---------------------------------

class _Executor:
    """Stands in for the worker pool: every job ends ok with a top-1 that grows with c."""

    def __init__(self, *args):
        self.jobs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def train(self, jobs):
        from tinyformula.execution.jobs import TrialResult, TrialState

        for job in jobs:
            self.jobs.append(job)
            top1 = 0.5 + 0.1 * math.log(job.scale.r * job.scale.d * job.scale.w ** 2 + 1)
            yield TrialResult(job.id, TrialState.OK, top1=top1, loss=1.0, seconds=0.1)


def test_failed_trials_are_retried_on_resume_and_the_device_is_no_identity(tmp_path,
                                                                          monkeypatch):
    from tinyformula import search
    from tinyformula.execution.jobs import TrialResult, TrialState
    from tinyformula.sweep import driver
    from tinyformula.sweep.store import TrialStore

    options = dict(preset="smoke", trials=4, train_size=64, c_range=(0.03, 0.3),
                   out=tmp_path / "run", progress=False, log=lambda message: None)
    runs = []

    class Failing(_Executor):
        def train(self, jobs):
            for job in jobs:
                yield TrialResult(job.id, TrialState.FAILED, message="RuntimeError: a bad day")

    def executor(kind, workers, scheduler, gpu_slots=None, **options):
        runs.append(Failing() if not runs else _Executor())
        return runs[-1]

    monkeypatch.setattr(driver, "make_executor", executor)
    with pytest.raises(TinyFormulaError, match="only 0 Pareto-optimal"):
        search("efficientnet_b0", "digits", device="cpu", **options)
    result = search("efficientnet_b0", "digits", device="auto", **options)
    assert len(runs[1].jobs) == 6  # every failed trial (4 + 2 replicates) trained again
    assert (result.trials["status"] == "ok").all() and result.formula is not None
    store = TrialStore.open(tmp_path / "run" / "trials.sqlite", create=False)
    assert all(t.state is TrialState.OK for t in store.trials())
    store.close()


def test_a_second_stage_that_cannot_be_planned_is_skipped_not_the_search_s_end(tmp_path,
                                                                               monkeypatch):
    """The default preset has a second stage; when the first stage's formula has no band to
    sample around, the search warns and ends with the first stage's formula."""
    from tinyformula import search
    from tinyformula.sweep import driver

    def no_band(*args):
        raise TinyFormulaError("the first stage's formula has no band to sample around")

    logged: list[str] = []
    monkeypatch.setattr(driver, "make_executor", lambda *a, **k: _Executor())
    monkeypatch.setattr(driver, "plan_second_stage", no_band)
    result = search("efficientnet_b0", "digits", preset="smoke", trials=6, train_size=64,
                    c_range=(0.03, 0.3), second_stage=4, out=tmp_path / "run", progress=False,
                    log=logged.append, device="cpu")
    assert result.formula is not None and len(result.trials) == 8   # 6 + 2 replicates
    warned = [m for m in logged if "no second stage" in m]
    assert len(warned) == 1 and "no band to sample around" in warned[0]
    assert (tmp_path / "run" / "formula.json").exists()


def test_an_empty_trials_file_reads_as_an_empty_search(tmp_path, cli):
    (tmp_path / "trials.sqlite").write_bytes(b"")
    code, _, err = cli("plot", tmp_path)
    assert code == 2 and one_line(err) and "holds an empty search" in err


def test_a_second_search_on_one_folder_is_refused(tmp_path):
    from tinyformula.core.locks import RunLock

    with RunLock(tmp_path):
        code = ("import sys; from tinyformula.core.locks import RunLock\n"
                "try:\n    RunLock(sys.argv[1]).__enter__()\n"
                "except Exception as e:\n    print(e)")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=ENV,
                             capture_output=True, text=True, check=True).stdout
        assert f"another search is running in {tmp_path} (pid {os.getpid()})" in out
    with RunLock(tmp_path):  # released on exit: the next search goes ahead
        pass


# -- full and read-only disks --------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (root only; skipped where mounting is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (mount -t tmpfs)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    try:  # the last pages too
        with open(filler, "ab") as handle:
            while True:
                handle.write(b"\0" * 512)
                handle.flush()
    except OSError:
        pass
    return filler


def test_a_full_disk_is_one_line_and_the_store_stays_resumable(small_disk):
    from test_plots import CONFIG, YARDSTICK, write_run

    from tinyformula.execution.jobs import TrialResult, TrialState
    from tinyformula.sweep.results import finish_search
    from tinyformula.sweep.store import TrialStore

    run = write_run(small_disk / "run", pending=3, formula=False)
    filler = _fill(small_disk)
    try:
        store = TrialStore.open(run / "trials.sqlite")  # a healthy store on a full disk
    except TinyFormulaError as error:
        assert "is full" in str(error) and "not a readable" not in str(error)
    else:
        pending = [t for t in store.trials() if t.state is TrialState.PENDING]
        with pytest.raises(TinyFormulaError, match="is full; every trial finished before is "
                                                   "saved"):
            for trial in pending:
                store.record(TrialResult(trial.id, TrialState.OK, top1=0.5, loss=1.0))
        store.close()
    reader = TrialStore.open(run / "trials.sqlite", create=False)
    trials = reader.trials()
    reader.close()
    with pytest.raises(TinyFormulaError, match="cannot write .*free some space"):
        finish_search(run, CONFIG, YARDSTICK, trials)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    filler.unlink()
    store = TrialStore.open(run / "trials.sqlite")  # space again: it resumes
    assert sum(t.state is TrialState.PENDING for t in store.trials()) == 3
    assert sum(t.state is TrialState.OK for t in store.trials()) == len(trials) - 3
    store.close()


def test_a_finished_run_on_read_only_storage_reads_and_plots(small_disk, tmp_path, cli):
    from test_plots import write_run

    from tinyformula import load_run

    run = write_run(small_disk / "run")
    db = sqlite3.connect(run / "trials.sqlite")  # as a reader left it: in WAL mode
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    loaded = load_run(run)
    assert loaded.finished and loaded.formula is not None
    code, out, err = cli("plot", run, "--budget", "0.25", "--out", tmp_path / "figures")
    assert code == 0 and len(out.splitlines()) == 3, err
    code, out, err = cli("plot", run, "--budget", "0.25")
    assert code == 2 and one_line(err) and "give --out DIR" in err


# -- signals: SIGTERM, kill -9, a second search --------------------------------------------------

# Many trials, so that the resumed search is still running when the second one starts (a trial
# takes ~0.2 s; with 4 trials a fast machine finished the resumed search first). The test ends
# the search with SIGTERM, so the trials it never trains cost nothing.
FIT = ["fit", "--data", "digits", "--preset", "smoke", "--train-size", "64", "--trials", "60",
       "--c-range", "0.03", "0.1", "--workers", "2", "--device", "cpu"]


def _descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_until(condition, what: str, limit_s: float = 240) -> None:
    """Poll ``condition``; the limit only stops a broken test from hanging the suite."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit_s, f"gave up waiting for {what}"
        time.sleep(0.2)


def _finished(run: Path) -> dict[int, float]:
    try:
        db = sqlite3.connect(f"file:{run / 'trials.sqlite'}?mode=ro", uri=True)
        rows = db.execute("SELECT id, finished_at FROM trials WHERE status != 'pending'")
        finished = dict(rows.fetchall())
        db.close()
        return finished
    except sqlite3.Error:
        return {}


def _start(run: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tinyformula.cli", *FIT, "--out", str(run)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_then_resume_then_sigterm_leaves_no_process_and_trains_nothing_twice(tmp_path,
                                                                                    cli):
    run = tmp_path / "run"
    driver = _start(run)
    workers: set[int] = set()

    def first_trial_done():
        workers.update(_descendants(driver.pid))
        assert driver.poll() is None, driver.communicate()
        return bool(_finished(run))

    _wait_until(first_trial_done, "the first trial")
    kept = _finished(run)
    driver.kill()  # kill -9: no clean-up runs in the driver
    driver.wait()
    assert len(workers) >= 2
    _wait_until(lambda: not any(map(_alive, workers)), "the workers to die with the driver")

    resumed = _start(run)
    _wait_until(lambda: len(_descendants(resumed.pid)) >= 2 or resumed.poll() is not None,
                "the resumed search's workers")
    assert resumed.poll() is None, resumed.communicate()
    code, out, err = cli(*FIT, "--out", run)  # a second search on the same folder
    assert code == 2 and one_line(err) and "another search is running" in err, err
    workers = _descendants(resumed.pid)
    resumed.send_signal(signal.SIGTERM)
    _, err = resumed.communicate(timeout=240)
    assert resumed.returncode in (143, 0), err  # 0: it finished before the signal
    if resumed.returncode == 143:
        assert err.strip().splitlines()[-1].startswith("tinyformula fit: terminated; every "
                                                       "finished trial is saved")
        assert "leaked" not in err and "Traceback" not in err
    _wait_until(lambda: not any(map(_alive, workers)), "the workers to stop")
    after = _finished(run)
    assert {i: after[i] for i in kept} == kept  # not trained again


# -- every command, random flags: exit 0 or 2, never a traceback ---------------------------------

class _Valid(Exception):
    """Raised where a command that passed every check would start loading data or training."""


def _stop(*args, **kwargs):
    raise _Valid()


TEXT = st.text(max_size=12)
NUMBERS = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["0", "-1", "1e308", "1e-320", "nan", "", "1.0000001",
                                     "9223372036854775807", "0x10", "1_000"]))
VALUES = st.one_of(TEXT, NUMBERS.map(str))

FLAGS = {
    "flops": ["--base", "--r", "--d", "--w", "--num-classes", "--resolution-base"],
    "predict": ["--flops", "--formula", "--base", "--num-classes", "--resolution-base"],
    "compare": ["--flops", "--formula", "--base", "--num-classes", "--resolution-base"],
    "plot": ["--budget", "--window", "--out"],
    "fit": ["--base", "--data", "--preset", "--trials", "--train-size", "--epochs", "--c-range",
            "--sampler", "--seed", "--batch-size", "--out", "--executor", "--workers",
            "--scheduler", "--device"],
    "train": ["--base", "--r", "--d", "--w", "--data", "--train-size", "--epochs",
              "--batch-size", "--optimizer", "--lr", "--val-size", "--device", "--seed"],
}
REQUIRED = {"predict": ["--flops", "0.25"], "compare": ["--flops", "0.25"],
            "train": ["--data", "digits"]}


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_random_flags_end_in_exit_0_or_2_with_a_line(command, cli, tmp_path, monkeypatch):
    import tinyformula.data
    from tinyformula.sweep import driver

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(driver, "cached_dataset", _stop)  # fit: no data, no training
    monkeypatch.setattr(driver, "reach_scheduler", _stop)  # and no name look-ups
    monkeypatch.setattr(tinyformula.data, "load_dataset", _stop)  # train: likewise

    @settings(max_examples=30, suppress_health_check=list(HealthCheck))
    @given(flags=st.dictionaries(st.sampled_from(FLAGS[command]), VALUES, max_size=4),
           run_dir=st.one_of(TEXT, st.just("run")))
    def check(flags, run_dir):
        argv = [command] + ([run_dir] if command == "plot" else []) + REQUIRED.get(command, [])
        for flag, value in flags.items():
            argv += [flag, value] + ([value] if flag == "--c-range" else [])
        before = sorted(tmp_path.rglob("*"))
        try:
            code, out, err = cli(*argv)
        except _Valid:
            return  # every check passed: the command would go on to real work
        assert code in (0, 2), (argv, code, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, (argv, err)
        if code == 2:
            assert out == "" and sorted(tmp_path.rglob("*")) == before, argv

    check()
