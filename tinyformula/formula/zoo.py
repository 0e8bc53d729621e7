"""The formula zoo: formulas fitted and validated here, shipped with their evidence.

Each entry is two files in the package (``tinyformula/formulas/zoo/``): ``BASE--DATASET.json``,
a formula file like any other (every value checked when read), and
``BASE--DATASET.evidence.json``: how it was found and how it did (the search's settings, the
validation table per budget, the date and the machine), with the formula file's SHA-256 so the
two cannot drift apart. ``tinyformula zoo`` lists them; ``--formula zoo:BASE/DATASET`` uses one
anywhere a formula file is accepted. Where no entry fits, the built-in formula (the published
TinyNet A-E, ImageNet) stays the default.

Pure Python: listing the zoo and predicting from an entry import neither torch nor numpy.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources

from ..core.errors import TinyFormulaError

PREFIX = "zoo:"
FOLDER = "formulas/zoo"
EVIDENCE_FORMAT = "tinyformula-zoo-evidence"
EVIDENCE_VERSION = 1
MAX_EVIDENCE_BYTES = 2**20
REQUIRED = ("format", "version", "name", "base", "dataset", "formula_sha256", "fit",
            "search", "validation", "date", "machine", "commands")


def _folder():
    return resources.files("tinyformula").joinpath(FOLDER)


def file_stem(name: str) -> str:
    """``BASE/DATASET`` as the entry's file stem, ``BASE--DATASET``."""
    return name.replace("/", "--")


def entry_names() -> list[str]:
    """Every entry's name, ``BASE/DATASET``, sorted."""
    folder = _folder()
    if not folder.is_dir():
        return []
    return sorted(item.name[:-len(".evidence.json")].replace("--", "/")
                  for item in folder.iterdir() if item.name.endswith(".evidence.json"))


def _check_name(name: str) -> str:
    names = entry_names()
    if name not in names:
        known = ", ".join(names) or "none"
        raise TinyFormulaError(f"no formula {PREFIX}{name} in the zoo (entries: {known}); "
                               f"list them with 'tinyformula zoo'")
    return name


def evidence(name: str) -> dict:
    """An entry's evidence, checked: its format, its keys, and that the formula file it
    describes is the one shipped (SHA-256)."""
    name = _check_name(name)
    stem = file_stem(name)
    raw = _folder().joinpath(f"{stem}.evidence.json").read_bytes()
    origin = f"the zoo's evidence for {name}"
    try:
        data = json.loads(raw[:MAX_EVIDENCE_BYTES].decode("utf-8"))
    except (ValueError, RecursionError):
        raise TinyFormulaError(f"{origin} is not valid JSON; reinstall tinyformula") from None
    if not isinstance(data, dict) or data.get("format") != EVIDENCE_FORMAT \
            or data.get("version") != EVIDENCE_VERSION:
        raise TinyFormulaError(f"{origin} is not zoo evidence of version {EVIDENCE_VERSION}")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise TinyFormulaError(f"{origin} lacks {', '.join(missing)}")
    if data["name"] != name:
        raise TinyFormulaError(f"{origin} names another entry ({data['name']!r})")
    digest = hashlib.sha256(_folder().joinpath(f"{stem}.json").read_bytes()).hexdigest()
    if digest != data["formula_sha256"]:
        raise TinyFormulaError(f"the zoo's formula for {name} is not the one its evidence "
                               f"describes (SHA-256 mismatch); reinstall tinyformula")
    return data


def zoo_formula(name: str):
    """The zoo's formula ``BASE/DATASET`` (a :class:`~.estimator.TinyFormula`), its evidence
    checked first."""
    from .estimator import TinyFormula

    evidence(name)
    text = _folder().joinpath(f"{file_stem(name)}.json").read_text()
    try:
        data = json.loads(text)
    except ValueError:
        raise TinyFormulaError(f"the zoo's formula for {name} is not valid JSON; reinstall "
                               f"tinyformula") from None
    return TinyFormula.from_dict(data, origin=f"{PREFIX}{name}")


def entry_for(base: str, dataset: str) -> str | None:
    """The zoo's entry for this base and dataset, if any (the name to pass as ``zoo:NAME``)."""
    name = f"{base}/{dataset}"
    return name if name in entry_names() else None


def listing() -> list[dict]:
    """One summary per entry: name, base, dataset, fit, date, machine, and the validation's
    verdict per budget (what ``tinyformula zoo`` prints)."""
    rows = []
    for name in entry_names():
        data = evidence(name)
        rows.append({"name": name, "formula": f"{PREFIX}{name}", "base": data["base"],
                     "dataset": data["dataset"], "fit": data["fit"],
                     "schedule": data["search"].get("schedule"), "date": data["date"],
                     "machine": data["machine"], "validation": data["validation"],
                     "summary": data.get("summary", "")})
    return rows
