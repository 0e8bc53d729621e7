"""The README stays a short guide that is true: its quick start parses, scripts/demo.sh runs the
same commands, every page it links to exists, and it stays under 250 lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _flags(argv: list[str]) -> tuple[str, frozenset]:
    return argv[1], frozenset(a for a in argv if a.startswith("--"))


def _quick_start() -> list[list[str]]:
    lines = re.findall(r"^\$ (tinyformula .*?)(?:\s+#.*)?$", README, re.M)
    return [shlex.split(line) for line in lines]


def test_the_readme_is_a_short_guide_with_its_links_in_place():
    assert len(README.splitlines()) <= 250
    for target in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]*)?\)", README):
        assert (ROOT / target).is_file(), target
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), (page.name, target)


def test_the_quick_start_parses_and_goes_fit_to_latency():
    from tinyformula.cli import build_parser

    commands = _quick_start()
    assert [argv[1] for argv in commands] == ["fit", "predict", "build", "train", "export",
                                              "latency"]
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv[1:])  # a usage error exits (status 2)


def test_the_demo_runs_the_quick_start():
    script = (ROOT / "scripts" / "demo.sh").read_text().replace("\\\n", " ")
    demo = [shlex.split(line.split("#")[0])[1:]
            for line in script.splitlines() if line.startswith("step tinyformula")]
    assert [_flags(argv) for argv in demo] == [_flags(argv) for argv in _quick_start()]
