"""Faults against every command that writes (issue #25): a full disk, a read-only file system
and a second SIGTERM during shutdown.

Every command that writes a file (build, export to ONNX and TorchScript, train --recipe final,
plot, fit, latency, and TinyFormula.save) meets each fault and must end in one line (exit
status 2 for a fault, 143 for SIGTERM), leave the previous complete file byte-identical, and
leave no temporary file.

The disk faults are real where this machine allows: a 2 MB tmpfs, filled (a full disk,
ENOSPC) or remounted read-only (EROFS); mounting needs root, so elsewhere the same tests run
on a simulated disk (the atomic writer's ``open`` replaced by one whose writes fail with the
same errno). A disk quota (EDQUOT) is always simulated. The signals are real: each command runs
in its own process, which sends itself SIGTERM twice while it writes (the first stops it, the
second arrives during the clean-up).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinyformula import TinyFormulaError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TINY = ["--r", "0.5", "--d", "0.25", "--w", "0.25"]


def one_line(text: str) -> bool:
    """One line of message; a progress bar redrawn in place (carriage returns) before it is
    what the terminal shows as the bar, not another line."""
    shown = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return len([line for line in shown if line.strip()]) == 1 and "Traceback" not in text


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# -- the disks ---------------------------------------------------------------------------------

def _mount(disk: Path, options: str) -> bool:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)],
                          capture_output=True).returncode == 0


def _fill(disk: Path) -> None:
    filler = disk / "filler"
    for size in (65536, 512, 1):
        try:
            with open(filler, "ab") as handle:
                while True:
                    handle.write(b"\0" * size)
                    handle.flush()
        except OSError:
            pass


class SimulatedDisk:
    """The atomic writer's writes fail with ``code`` (for machines where tmpfs cannot be
    mounted, and for EDQUOT)."""

    def __init__(self, monkeypatch, code: int):
        from tinyformula.core import files

        real_open = open

        def failing_open(path, mode="r", *args, **kwargs):
            handle = real_open(path, mode, *args, **kwargs)
            if "w" in mode or "a" in mode:
                def write(data):
                    raise OSError(code, os.strerror(code))
                handle.write = write  # type: ignore[method-assign]
            return handle

        monkeypatch.setattr(files, "open", failing_open, raising=False)


KINDS = ("full", "read-only", "quota")


@pytest.fixture
def fault(request, tmp_path, monkeypatch):
    """A folder ``disk``, a function that makes it fail, and the fault's kind (the test's
    ``kind`` parameter): ``(disk, break_it, kind)``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    kind = request.getfixturevalue("kind")
    mounted = kind != "quota" and _mount(disk, "size=4m")
    code = {"full": errno.ENOSPC, "read-only": errno.EROFS, "quota": errno.EDQUOT}[kind]

    def break_it():
        if not mounted:
            SimulatedDisk(monkeypatch, code)
        elif kind == "full":
            _fill(disk)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    yield disk, break_it, kind
    if mounted:
        subprocess.run(["umount", "-l", str(disk)], check=True)


WORDS = {"full": "disk is full", "read-only": "read-only", "quota": "quota"}


def check_fault(disk: Path, before: dict, code, err: str, kind: str) -> None:
    assert code == 2 and one_line(err) and WORDS[kind] in err, err
    after = {k: v for k, v in snapshot(disk).items() if k.name != "filler"}
    assert after == {k: v for k, v in before.items() if k.name != "filler"}
    assert not temporaries(disk)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from test_plots import write_run

    from tinyformula import create_model, save_model

    folder = tmp_path_factory.mktemp("faults")
    model = create_model(num_classes=10, resolution_base=32, r=0.5, d=0.25, w=0.25, seed=0)
    save_model(model, folder / "model.pt")
    return {"model": folder / "model.pt", "run": write_run(folder / "run")}


def _previous(disk: Path, cli, command: list) -> dict:
    """Write the destination once while the disk is healthy: the previous complete file."""
    code, _, err = cli(*command)
    assert code == 0, err
    return snapshot(disk)


# Every command that writes meets a full disk; the cheap ones every fault (the writer is one).
DISK_CASES = [(command, "full") for command in ("export onnx", "export torchscript")] + [
    (command, kind) for command in ("build", "plot") for kind in KINDS]


@pytest.mark.parametrize("command, kind", DISK_CASES)
def test_a_disk_fault_is_one_line_and_keeps_the_previous_file(command, kind, fault, world, cli,
                                                              one_thread):
    disk, break_it, kind = fault
    argv = {"build": ["build", *TINY, "--num-classes", "10", "--out", disk / "m.pt"],
            "export onnx": ["export", world["model"], "--format", "onnx", "--data", "digits",
                            "--images", "16", "--out", disk / "m.onnx"],
            "export torchscript": ["export", world["model"], "--format", "torchscript",
                                   "--data", "digits", "--images", "16", "--out",
                                   disk / "m.ts"],
            "plot": ["plot", world["run"], "--budget", "0.25", "--out", disk / "plots"],
            }[command]
    before = _previous(disk, cli, argv)
    break_it()
    code, _, err = cli(*argv)
    check_fault(disk, before, code, err, kind)


def test_torchscript_on_a_full_disk_does_not_abort_the_interpreter(world, tmp_path):
    """torch's own TorchScript writer aborts the process (SIGABRT) on a full disk; the export
    is made in memory, so a full disk is one line."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount(disk, "size=1m"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        _fill(disk)
        done = subprocess.run([sys.executable, "-m", "tinyformula.cli", "export",
                               str(world["model"]), "--format", "torchscript", "--data",
                               "digits", "--images", "8", "--out", str(disk / "m.ts")],
                              env=ENV, capture_output=True, text=True)
        assert done.returncode == 2 and one_line(done.stderr), done.stderr
        assert "disk is full" in done.stderr and not temporaries(disk)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.parametrize("kind", ["full"])
def test_the_final_recipe_on_a_disk_fault_keeps_its_last_checkpoint(kind, fault, tmp_path,
                                                                    one_thread):
    from tinyformula import RecipeConfig, create_model, train_final
    from tinyformula.data import load_dataset

    disk, break_it, kind = fault
    data = load_dataset("digits")
    recipe = RecipeConfig.of(epochs=2, train_size=64, batch_size=32, val_size=32,
                             bn_recalibrate=32)

    def model():
        return create_model(num_classes=10, resolution_base=32, r=0.5, d=0.25, w=0.25, seed=0)

    train_final(data, model(), disk / "run", recipe, stop_after=1)
    before = snapshot(disk)
    break_it()
    with pytest.raises(TinyFormulaError) as error:
        train_final(data, model(), disk / "run", recipe)
    assert one_line(str(error.value)) and WORDS[kind] in str(error.value)
    assert {k: v for k, v in snapshot(disk).items() if k.name != "filler"} == \
        {k: v for k, v in before.items() if k.name != "filler"}
    assert not temporaries(disk)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_and_a_formula_on_a_disk_fault(kind, fault, cli, tmp_path, monkeypatch):
    from tinyformula import TinyFormula

    disk, break_it, kind = fault
    TinyFormula.builtin().save(disk / "formula.json")
    before = snapshot(disk)
    break_it()
    with pytest.raises(TinyFormulaError) as error:
        TinyFormula.builtin().save(disk / "formula.json")
    check_fault(disk, before, 2, str(error.value), kind)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("fit", "--data", "digits", "--preset", "smoke", "--out", disk / "run")
    assert code == 2 and one_line(err), err
    assert not (disk / "run").exists() or not any((disk / "run").iterdir())


@pytest.mark.parametrize("kind", KINDS)
def test_a_latency_table_on_a_disk_fault_is_one_line(kind, fault, cli, monkeypatch):
    """The table is written after timing: with timing made instant, the write meets the
    fault; the previous table stays."""
    from tinyformula.cost.latency import model as latency_model
    from tinyformula.cost.latency.measure import Timing

    disk, break_it, kind = fault
    monkeypatch.setenv("TINYFORMULA_CACHE", str(disk))

    def instant(*args, **kwargs):
        return Timing(median_ms=1.0, p10_ms=0.9, p25_ms=0.95, p75_ms=1.05, p90_ms=1.1,
                      reps=10, stable=True, load=0.0)

    monkeypatch.setattr(latency_model, "time_module", instant)
    monkeypatch.setattr(latency_model, "measure_network", instant)
    monkeypatch.setattr(latency_model, "unit_copies", lambda *args, **kwargs: None)
    base = ["latency", "--no-measure", "--num-classes", "10", "--resolution-base", "32"]
    code, _, err = cli(*base, "--r", "0.5")
    assert code == 0, err
    before = snapshot(disk)
    break_it()
    code, _, err = cli(*base, "--r", "0.3", "--w", "0.3")  # new blocks: the table grows
    if kind == "read-only" and code == 2:
        assert one_line(err) and "nothing was timed" in err or WORDS[kind] in err, err
    else:
        check_fault(disk, before, code, err, kind)
    assert {k: v for k, v in snapshot(disk).items() if k.name != "filler"} == \
        {k: v for k, v in before.items() if k.name != "filler"}


# -- a second SIGTERM during shutdown -------------------------------------------------------

# Runs a command in its own process; the first time the atomic writer (or the store, for
# fit) writes, the process sends itself SIGTERM, and again during the clean-up.
HARNESS = textwrap.dedent("""
    import os, signal, sys, threading, time
    from tinyformula.core import files
    from tinyformula.sweep import store

    def twice():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    def stop_here():
        threading.Thread(target=twice, daemon=True).start()
        time.sleep(5)  # the first SIGTERM arrives here; the second during the clean-up

    if os.environ["AT"] == "record":  # a search: once its workers train
        record = store.TrialStore.record

        def recorded(*args, **kwargs):
            stop_here()
            return record(*args, **kwargs)
        store.TrialStore.record = recorded
    else:  # with the temporary file written in full, before it replaces the destination
        replace = files.replace_atomically

        def replaced(path, write_to, kind=None):
            def written(tmp):
                write_to(tmp)
                stop_here()
            return replace(path, written, kind)
        files.replace_atomically = replaced
    if os.environ.get("INSTANT_TIMING"):
        from tinyformula.cost.latency import model
        from tinyformula.cost.latency.measure import Timing
        timing = Timing(1.0, 0.9, 0.95, 1.05, 1.1, 10, True, 0.0)
        model.time_module = model.measure_network = lambda *a, **k: timing
        model.unit_copies = lambda *a, **k: None
    from tinyformula.cli import _entry
    sys.argv = ["tinyformula", *sys.argv[1:]]
    _entry()
""")


SIGNAL_CASES = {
    "build": (["build", *TINY, "--out", "{dir}/m.pt"], "write"),
    "export onnx": (["export", "{model}", "--format", "onnx", "--data", "digits", "--images",
                     "8", "--out", "{dir}/m.onnx"], "write"),
    "plot": (["plot", "{run}", "--budget", "0.25", "--out", "{dir}/plots"], "write"),
    "train final": (["train", "--recipe", "final", "--data", "digits", *TINY, "--epochs", "1",
                     "--train-size", "128", "--batch-size", "64", "--val-size", "64",
                     "--quiet", "--out", "{dir}/final"], "write"),
    "latency": (["latency", "--no-measure", "--num-classes", "10", "--resolution-base", "32",
                 "--r", "0.5"], "write"),
    "fit": (["fit", "--data", "digits", "--preset", "smoke", "--train-size", "64", "--trials",
             "4", "--c-range", "0.03", "0.05", "--workers", "2", "--device", "cpu", "--out",
             "{dir}/run"], "record"),
}


@pytest.mark.parametrize("name", sorted(SIGNAL_CASES))
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")
def test_a_second_sigterm_during_shutdown_is_ignored(name, world, tmp_path):
    argv, at = SIGNAL_CASES[name]
    argv = [str(a).format(dir=tmp_path, model=world["model"], run=world["run"]) for a in argv]
    env = {**ENV, "AT": at, "TINYFORMULA_CACHE": str(tmp_path / "cache")}
    if name == "latency":
        env["INSTANT_TIMING"] = "1"
    if name == "build":  # a previous complete file at the destination
        (tmp_path / "m.pt").write_bytes(world["model"].read_bytes())
    before = snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-c", HARNESS, *argv], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 128 + signal.SIGTERM, (done.returncode, done.stderr[-2000:])
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"tinyformula {argv[0]}: terminated"), done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "leaked" not in done.stderr, done.stderr[-2000:]
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not temporaries(tmp_path)
