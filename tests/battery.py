"""What the property battery's test files share (issue #25): each case must end in exit
status 2 or ``TinyFormulaError``, in one line, with every file that was there byte-identical
and no temporary file left; ``COUNTS`` tallies the cases by kind (the report's counts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tinyformula import TinyFormulaError

FEW = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck),
               derandomize=True)
COUNTS: dict[str, int] = {}   # cases run, by kind


def count(kind: str, n: int = 1) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + n


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` and its bytes (what must stay byte-identical)."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


def refused(cli, folder: Path, *argv) -> str:
    """Run the command; assert exit 2, one line, nothing on stdout, the folder unchanged and
    no temporary file; return stderr."""
    before = snapshot(folder)
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and one_line(err), (argv, code, out, err)
    assert snapshot(folder) == before, argv
    assert not temporaries(folder), argv
    return err


def refused_api(call, folder: Path | None = None) -> str:
    before = snapshot(folder) if folder else None
    with pytest.raises(TinyFormulaError) as error:
        call()
    message = str(error.value)
    assert one_line(message), message
    if folder is not None:
        assert snapshot(folder) == before and not temporaries(folder)
    return message




def make_tiny_world(tmp_path_factory) -> dict:
    """What the cases need: a tiny model, digits, a finished run folder."""
    from test_plots import write_run

    from tinyformula import create_model
    from tinyformula.data import load_dataset

    folder = tmp_path_factory.mktemp("world")
    return {"model": create_model(num_classes=10, resolution_base=32, r=0.5, d=0.25, w=0.25,
                                  seed=0),
            "data": load_dataset("digits"), "run": write_run(folder / "run"), "folder": folder}
