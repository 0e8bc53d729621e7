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




FOREIGN_FILES = {"empty": b"", "binary": bytes(range(256)) * 4, "text": b"someone's notes\n",
                 "a deep JSON": b"[" * 100_000, "a JSON list": b"[1, 2, 3]"}


def refuses_every_malformed(path: Path, valid, schema, read, write, *,
                            seal=lambda value: value, foreign: bool = True) -> int:
    """The battery for one file kind, in one call (what a new reader's test calls): ``valid``
    (a value that fits ``schema``) must read, and every malformed version of it
    (``core.schema.mutations``: each field left out, each given every value its constraint
    refuses; ``seal`` re-adds a checksum, so only the schema can catch them) and every foreign
    file must make ``read(path)`` raise TinyFormulaError in one line, leaving ``path``'s
    folder byte-identical with no temporary file. ``write(path, value)`` writes a value as
    the file kind does; bytes are written as they are. Returns the number of cases."""
    from tinyformula.core.schema import mutations

    write(path, seal(valid))
    read(path)  # the valid one reads
    cases = [(where, seal(bad) if isinstance(bad, dict) else bad)
             for where, bad in mutations(schema, valid)]
    if foreign:
        cases += list(FOREIGN_FILES.items())
    for where, bad in cases:
        if isinstance(bad, bytes):
            path.write_bytes(bad)
        else:
            write(path, bad)
        try:
            refused_api(lambda: read(path), path.parent)
        except BaseException as failure:
            raise AssertionError(f"{path.name}, {where}: {failure!r}") from None
    return len(cases)


def make_tiny_world(tmp_path_factory) -> dict:
    """What the cases need: a tiny model, digits, a finished run folder."""
    from test_plots import write_run

    from tinyformula import create_model
    from tinyformula.data import load_dataset

    folder = tmp_path_factory.mktemp("world")
    return {"model": create_model(num_classes=10, resolution_base=32, r=0.5, d=0.25, w=0.25,
                                  seed=0),
            "data": load_dataset("digits"), "run": write_run(folder / "run"), "folder": folder}
