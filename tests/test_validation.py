"""tinyformula validate end to end on real data (digits, a tiny FD-MobileNet search): killed with
kill -9 mid-validation and resumed without training anything twice, its files, the formula's
evidence and predict's line, other formulas validated on the same trainings, and bad input
refused in one line with nothing written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tinyformula import load_validation, search, validate

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
RUN = dict(preset="smoke", trials=6, train_size=512, epochs=2, batch_size=32,
           c_range=(0.05, 0.5), workers=1, device="cpu")
VALIDATE = ["--budgets", "0.1", "0.3", "--images", "1024", "--seeds", "7", "8", "--fidelity",
            "3", "--score-size", "100", "--baselines", "giant", "searched", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished search on digits, small enough to validate in seconds."""
    out = tmp_path_factory.mktemp("validate") / "run"
    search("fd_mobilenet", "digits", out=out, progress=False, log=lambda message: None, **RUN)
    return out


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def finished(folder: Path) -> dict[int, float]:
    try:
        db = sqlite3.connect(f"file:{folder / 'validation.sqlite'}?mode=ro", uri=True)
        rows = dict(db.execute("SELECT id, finished_at FROM trainings WHERE status != "
                               "'pending'").fetchall())
        db.close()
        return rows
    except sqlite3.Error:
        return {}


def rows(folder: Path) -> list[tuple]:
    db = sqlite3.connect(f"file:{folder / 'validation.sqlite'}?mode=ro", uri=True)
    out = db.execute("SELECT id, status, finished_at FROM trainings ORDER BY id").fetchall()
    db.close()
    return out


def descendants(pid: int) -> set[int]:
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


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, what: str, limit_s: float = 600) -> None:
    import time

    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit_s, f"gave up waiting for {what}"
        time.sleep(0.2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_mid_validation_resumes_without_training_anything_twice(tiny_run, tmp_path, cli):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    driver = subprocess.Popen([sys.executable, "-m", "tinyformula.cli", "validate", str(run),
                               *VALIDATE, "--workers", "2"], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()

    def first_training_done():
        workers.update(descendants(driver.pid))
        assert driver.poll() is None, driver.communicate()
        return bool(finished(run))

    wait_until(first_training_done, "the first training")
    driver.kill()  # kill -9: no clean-up runs in the driver
    driver.wait()
    kept = finished(run)
    assert len(workers) >= 2
    wait_until(lambda: not any(map(alive, workers)), "the workers to die with the driver")
    assert not (run / "validation.json").exists()

    code, out, err = cli("validate", run, *VALIDATE, "--workers", "2")
    assert code == 0, err
    after = finished(run)
    assert {i: after[i] for i in kept} == kept        # nothing finished was trained again
    assert all(status == "ok" for _, status, _ in rows(run))
    for name in ("validation.md", "validation.json", "validation.png", "formula.json"):
        assert (run / name).is_file(), name
    assert "fitted - this" in out and "Fidelity: 3 frontier points" in out

    result = load_validation(run)
    assert result.budgets == [0.1, 0.3] and result.seeds == [7, 8]
    assert result.tested == ["fitted"] and set(result.baselines) <= {"giant", "searched"}
    assert set(result.verdicts["fitted"]["giant"]) == {0.1, 0.3}
    table = result.table()
    assert set(table["formula"]) >= {"fitted", "giant"} and (table["n"] == 2).all()
    assert result.fidelity["retrained"] == 3
    # The search never scored on digits' own held-out split; the validation does.
    assert "held-out" in result.report["scored_on"] and result.report["score_size"] == 100

    formula = json.loads((run / "formula.json").read_text())
    assert formula["validation"]["verdicts"]["giant"].keys() == {"0.1", "0.3"}
    code, out, err = cli("predict", "--formula", run / "formula.json", "--flops", "0.2")
    assert code == 0 and "validation: wins/ties/loses against giant" in out, err

    # The same command again trains nothing and reports the same tables.
    before = rows(run)
    code, out, err = cli("validate", run, *VALIDATE, "--json")
    assert code == 0, err
    assert rows(run) == before
    assert json.loads(out)["by_schedule"] == result.report["by_schedule"]

    # Any formulas on the same run: the same networks, so no new training.
    both = validate(run, formulas=["run", f"again={run / 'formula.json'}"], progress=False,
                    log=lambda message: None, budgets=[0.1, 0.3], images=1024, seeds=[7, 8],
                    fidelity=3, score_size=100, baselines=["giant", "searched"], device="cpu",
                    workers=1)
    assert rows(run) == before
    assert both.tested == ["fitted", "again"]
    same = [x for row in both.report["by_schedule"][-1]["budgets"] for x in row["comparisons"]
            if x["formula"] == "fitted" and x["baseline"] == "again"]
    assert same and all(x["same_network"] and x["verdict"] == "ties" for x in same)

    # --baselines none: the tested formulas against each other only; the run's formula keeps
    # the evidence it has (its verdicts against the fixed formulas).
    evidence = (run / "formula.json").read_bytes()
    alone = validate(run, formulas=["run", f"again={run / 'formula.json'}"], progress=False,
                     log=lambda message: None, budgets=[0.1, 0.3], images=1024, seeds=[7, 8],
                     fidelity=3, score_size=100, baselines="none", device="cpu", workers=1)
    assert rows(run) == before and alone.baselines == []
    assert {(x["formula"], x["baseline"]) for row in alone.report["by_schedule"][-1]["budgets"]
            for x in row["comparisons"]} == {("fitted", "again"), ("again", "fitted")}
    assert (run / "formula.json").read_bytes() == evidence

    # One more seed on Dask distributed: only its trainings are new.
    pytest.importorskip("dask.distributed")
    more = validate(run, progress=False, log=lambda message: None, budgets=[0.1],
                    images=1024, seeds=[7, 8, 9], fidelity=0, score_size=100,
                    baselines=["giant"], device="cpu", executor="dask", workers=2)
    new = [row for row in rows(run) if row not in before]
    assert 1 <= len(new) <= 2 and all(status == "ok" for _, status, _ in new)
    assert more.seeds == [7, 8, 9] and (more.table()["n"] == 3).all()


@pytest.fixture
def no_training(monkeypatch):
    """A refusal that did not happen fails the test at once instead of training."""
    from tinyformula.sweep.validation import driver

    def refuse(*args, **kwargs):
        raise AssertionError("the input was accepted: the validation would train")

    monkeypatch.setattr(driver, "start_executor", refuse)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("argv, message", [
    (["--budgets", "0.7"], "outside the search's c range"),
    (["--images", "512"], "below the search's 1,024"),
    (["--seeds", "7", "1"], "seed 1 was used by the search"),
    (["--seeds", "0"], "seed 0 was used by the search"),
    (["--schedules", "2", "4", "--images", "5000"], "leave out --images"),
    (["--formula", str(ROOT / "tinyformula" / "formulas" / "efficientnet_b0.json")],
     "not fd_mobilenet"),
    (["--formula", "giant=run"], "is taken"),
    (["--images", "100000", "--epochs", "1"], "distinct training images"),
    (["--baselines", "none", "giant"], "name no other with it"),
    (["--baselines", "none"], "give two or more with --formula"),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny_run, tmp_path, cli, argv, message,
                                                   no_training):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = snapshot(tmp_path)
    code, out, err = cli("validate", run, *argv)
    assert code == 2 and out == "" and one_line(err) and message in err, err
    assert snapshot(tmp_path) == before


def test_folders_that_are_no_validatable_run_are_refused(tiny_run, tmp_path, cli, no_training):
    empty = tmp_path / "empty"
    empty.mkdir()
    no_formula = tmp_path / "no-formula"
    shutil.copytree(tiny_run, no_formula)
    (no_formula / "formula.json").unlink()
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    file = tmp_path / "file"
    file.write_text("x")
    before = snapshot(tmp_path)
    for argv, message in [((empty,), "is not a run folder"),
                          ((tmp_path / "missing",), "is not a run folder"),
                          ((file,), "is a file"),
                          ((no_formula,), "holds no formula"),
                          ((tiny_run, "--out", other), "holds another search"),
                          ((tiny_run, "--out", file), "is a file")]:
        code, out, err = cli("validate", *argv)
        assert code == 2 and out == "" and one_line(err) and message in err, (argv, err)
    assert snapshot(tmp_path) == before


def test_sigterm_stops_a_validation_with_a_line_and_keeps_what_finished(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    driver = subprocess.Popen([sys.executable, "-m", "tinyformula.cli", "validate", str(run),
                               *VALIDATE, "--workers", "1"], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_until(lambda: (run / "validation.sqlite").exists() or driver.poll() is not None,
               "the plan")
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=600)
    assert driver.returncode in (143, 0), err
    if driver.returncode == 143:
        assert err.strip().splitlines()[-1].startswith("tinyformula validate: terminated; every "
                                                       "finished training is saved")
        assert "Traceback" not in err
