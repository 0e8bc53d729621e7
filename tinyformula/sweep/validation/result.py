"""A validation's result: :class:`ValidationResult`, its files (``validation.json``, the whole
report; ``validation.md``, its tables for people) and reading them back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import TinyFormulaError
from ...core.files import write_atomically
from ...formula.validation import RULE, formula_entry

REPORT_FORMAT = "tinyformula-validation-report"
REPORT_VERSION = 1
JSON_NAME, MARKDOWN_NAME, FIGURE_NAME = "validation.json", "validation.md", "validation.png"


@dataclass
class ValidationResult:
    """What ``validate()`` measured: ``report`` is the whole of ``validation.json`` (plain
    data); the properties read the parts most callers want.

    Attributes
    ----------
    path : Path
        The folder holding ``validation.json``, ``validation.md`` and ``validation.sqlite``.
    report : dict
        ``budgets``, ``seeds``, ``schedules`` (shortest first; the last decides the
        verdicts), ``tested`` (formula name -> where it came from), ``baselines``,
        ``entries`` (each formula's configuration at each budget), ``scores`` (every
        training's top-1), ``by_schedule`` (per schedule: the seed noise, per budget each
        formula's mean and spread and each tested formula's paired differences and
        verdicts, and the falls), ``movement`` (across schedules, or None), ``fidelity``.
    """

    path: Path
    report: dict

    @property
    def budgets(self) -> list[float]:
        return list(self.report["budgets"])

    @property
    def seeds(self) -> list[int]:
        return list(self.report["seeds"])

    @property
    def tested(self) -> list[str]:
        return list(self.report["tested"])

    @property
    def baselines(self) -> list[str]:
        return list(self.report["baselines"])

    @property
    def verdicts(self) -> dict[str, dict[str, dict[float, str]]]:
        """``{tested: {other formula: {c: wins|ties|loses}}}`` on the longest schedule."""
        out: dict[str, dict[str, dict[float, str]]] = {}
        for row in self.report["by_schedule"][-1]["budgets"]:
            for x in row["comparisons"]:
                out.setdefault(x["formula"], {}).setdefault(x["baseline"], {})[row["c"]] = \
                    x["verdict"]
        return out

    @property
    def falls(self) -> list[dict]:
        """Budgets whose mean top-1 falls below a smaller budget's (longest schedule)."""
        return list(self.report["by_schedule"][-1]["falls"])

    @property
    def fidelity(self) -> dict:
        return dict(self.report.get("fidelity") or {})

    def table(self, schedule: int = -1):
        """A pandas DataFrame: one row per budget and formula on schedule ``schedule`` (index
        into ``report['schedules']``), with its configuration, mean top-1 and spread."""
        import pandas as pd

        configs = {(e["c_budget"], e["formula"]): e for e in self.report["entries"]}
        rows = []
        for row in self.report["by_schedule"][schedule]["budgets"]:
            for cell in row["formulas"]:
                entry = configs.get((row["c"], cell["formula"]), {})
                rows.append({"budget": row["c"], "formula": cell["formula"],
                             **{k: entry.get(k) for k in ("r", "d", "w", "resolution", "c")},
                             **{k: cell[k] for k in ("mean", "sd", "min", "max", "n")}})
        return pd.DataFrame(rows)

    def entry(self, name: str | None = None) -> dict:
        """The evidence a formula file carries for tested formula ``name`` (default: the
        first tested): set it as a fitted formula's ``validation_`` before saving it."""
        name = name or self.tested[0]
        if name not in self.report["tested"]:
            raise TinyFormulaError(f"{name!r} was not tested here; tested: "
                                   f"{', '.join(self.tested)}")
        return formula_entry(self.report, name, self.report["date"])

    def to_dict(self) -> dict:
        return self.report

    def save(self) -> None:
        """Write ``validation.json`` and ``validation.md`` into ``path``, atomically."""
        write_atomically(self.path / JSON_NAME, json.dumps(self.report, indent=1) + "\n")
        write_atomically(self.path / MARKDOWN_NAME, markdown(self.report))


def load_validation(path) -> ValidationResult:
    """Read a validation back: a folder holding ``validation.json``, or the file itself."""
    path = Path(path)
    file = path / JSON_NAME if path.is_dir() else path
    try:
        report = json.loads(file.read_text())
    except FileNotFoundError:
        raise TinyFormulaError(f"no validation at {path} (no {JSON_NAME}); run 'tinyformula "
                               f"validate RUN' first") from None
    except (OSError, ValueError) as error:
        raise TinyFormulaError(f"{file} is not a readable validation report ({error})") from None
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT \
            or report.get("version") != REPORT_VERSION:
        raise TinyFormulaError(f"{file} is not a validation report of this tinyformula")
    return ValidationResult(file.parent, report)


# -- validation.md -----------------------------------------------------------------------------

def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _signed(value) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def markdown(report: dict) -> str:
    """The report's tables for people (every figure in points of top-1, per cent)."""
    search = report["search_images"]
    main = report["schedules"][-1]
    lines = [f"# Validation of {report['run']}", "",
             f"{report['base']} on {report['data']}: each formula's network at each budget "
             f"trained on {main['images']:,} images ({main['multiple']:.3g}x the search's "
             f"{search:,}: {main['train_size']:,} x {main['epochs']} epoch(s)) with seeds "
             f"{' '.join(map(str, report['seeds']))} (the search used "
             f"{' '.join(map(str, report['search_seeds']))}), scored on "
             f"{report['scored_on']}, which the search never scored on (it scored on images "
             f"held out from the training split). Written {report['date']} by tinyformula "
             f"{report['version_written_by']}.", ""]
    if len(report["schedules"]) > 1:
        lines += ["Schedules: " + ", ".join(f"{s['images']:,} images ({s['multiple']:.3g}x)"
                                           for s in report["schedules"])
                  + "; the longest decides the verdicts.", ""]
    for note in report.get("notes", []):
        lines += [f"- {note}"]
    lines += ["", "## Configurations (width solved to each budget, within 2% below it)", "",
              "| c | formula | r | d | w | px | c achieved | note |", "|---" * 8 + "|"]
    for e in report["entries"]:
        if e.get("r") is None:
            lines.append(f"| {e['c_budget']:g} | {e['formula']} | - | - | - | - | - | "
                         f"{e['note']} |")
        else:
            lines.append(f"| {e['c_budget']:g} | {e['formula']} | {e['r']:.3f} | {e['d']:.3f} "
                         f"| {e['w']:.3f} | {e['resolution']} | {e['c']:.4f} | {e['note']} |")
    for schedule, table in zip(report["schedules"], report["by_schedule"]):
        lines += [""] + schedule_lines(schedule, table, report["tested"])
    if report.get("movement"):
        lines += [""] + movement_lines(report["movement"])
    lines += [""] + fidelity_lines(report.get("fidelity") or {})
    lines += ["", "## How the verdict is decided", "", RULE + ".", ""]
    return "\n".join(lines)


def schedule_lines(schedule: dict, table: dict, tested) -> list[str]:
    noise = table["noise"]
    out = [f"## Top-1 (%) at {schedule['images']:,} images ({schedule['multiple']:.3g}x)", ""]
    if noise["difference_sd"] is not None:
        source = ("measured here" if noise["source"] == "validation"
                  else "the search's seed noise: one seed here")
        score = (f"one score varies by {_pct(noise['score_sd'])} points (sd, "
                 f"{noise['score_dof']} dof) between seeds; "
                 if noise["score_sd"] is not None else "")
        out += [f"Seed noise ({source}): {score}a paired difference by "
                f"{_pct(noise['difference_sd'])} points (sd, {noise['difference_dof']} dof). "
                f"A pair whose own differences vary more is judged on its own (± se below).",
                ""]
    else:
        out += ["Seed noise: not measured (one seed, and the search measured none): every "
                "verdict is a tie.", ""]
    names = list(dict.fromkeys(x["baseline"] for row in table["budgets"]
                               for x in row["comparisons"]))
    for t in tested:
        out += [f"| c | formula | mean | sd | min..max | n | {t} - this (± se) | verdict |",
                "|---" * 8 + "|"]
        for row in table["budgets"]:
            diffs = {x["baseline"]: x for x in row["comparisons"] if x["formula"] == t}
            for cell in row["formulas"]:
                x = diffs.get(cell["formula"])
                diff = (f"{_signed(x['difference'])} ± {_pct(x['se'])}"
                        + (" (same network)" if x["same_network"] else "")) if x else ""
                lead = " (best)" if row["leader"] == cell["formula"] else ""
                out.append(f"| {row['c']:g} | {cell['formula']}{lead} | {_pct(cell['mean'])} | "
                           f"{_pct(cell['sd'])} | {_pct(cell['min'])}..{_pct(cell['max'])} | "
                           f"{cell['n']} | {diff} | {x['verdict'] if x else ''} |")
        budgets = [row["c"] for row in table["budgets"]]
        out += ["", f"Verdicts of {t} against each formula:", "",
                "| against | " + " | ".join(f"c = {c:g}" for c in budgets) + " |",
                "|---" * (len(budgets) + 1) + "|"]
        for b in names:
            if b == t:
                continue
            cells = []
            for row in table["budgets"]:
                x = next((x for x in row["comparisons"]
                          if x["formula"] == t and x["baseline"] == b), None)
                cells.append(f"{x['verdict']} ({_signed(x['difference'])})" if x else "-")
            out.append(f"| {b} | " + " | ".join(cells) + " |")
        out.append("")
    falls = table["falls"]
    if falls:
        out += ["Falls (a budget's mean top-1 below a smaller budget's):", ""]
        out += [f"- {f['formula']}: c = {f['c']:g} scores {_pct(f['drop'])} points below "
                f"c = {f['below']:g}" + (" (more than 2 se: the formula is wrong there)"
                                          if f["significant"] else " (within the noise)")
                for f in falls]
    else:
        out.append("Falls: none (every formula's mean top-1 rises with the budget).")
    return out


def movement_lines(movement: dict) -> list[str]:
    images = movement["images"]
    out = ["## Is the ranking still moving with the schedule?", "",
           "| c | leaders (" + " / ".join(f"{i:,}" for i in images) + ") | Kendall tau between "
           "consecutive schedules | verdicts that change | moving |", "|---" * 5 + "|"]
    for b in movement["budgets"]:
        taus = ", ".join("-" if t is None else f"{t:+.2f}" for t in b["kendall_tau"])
        changes = "; ".join(f"{t} vs {base}: {' -> '.join(v or '-' for v in line)}"
                            for t, lines in b["verdicts"].items()
                            for base, line in lines.items() if len(set(line)) > 1)
        out.append(f"| {b['c']:g} | {' / '.join(x or '-' for x in b['leaders'])} | {taus} | "
                   f"{changes or 'none'} | {'yes' if b['moving'] else 'no'} |")
    return out


def fidelity_lines(fidelity: dict) -> list[str]:
    points = fidelity.get("points") or []
    if not points:
        return ["## Fidelity of the search", "", "No frontier point was retrained."]
    out = ["## Fidelity of the search (frontier points retrained on the longest schedule, "
           "first seed)", "", "| trial | c | r | d | w | px | search top-1 | long top-1 |",
           "|---" * 8 + "|"]
    for p in points:
        out.append(f"| {p['trial']} | {p['c']:.3f} | {p['r']:.3f} | {p['d']:.3f} | "
                   f"{p['w']:.3f} | {p['resolution']} | {_pct(p['short'])} | "
                   f"{_pct(p.get('long'))} |")
    tau, rho = fidelity.get("kendall_tau"), fidelity.get("spearman")
    out += ["", f"Kendall tau {'-' if tau is None else f'{tau:+.2f}'}, Spearman rho "
                f"{'-' if rho is None else f'{rho:+.2f}'} over {fidelity['retrained']} points "
                f"(frontier points rise with c in the search, so 1 means the longer schedule "
                f"keeps that order)."]
    return out
