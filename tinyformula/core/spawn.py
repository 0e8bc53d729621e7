"""Whether worker processes may be spawned from here: a spawned process imports the main
script again, so a call at a script's unguarded top level would run again in every worker."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path


def unguarded_main() -> str:
    """``"PATH (line N)"`` when the call that led here sits at the top level of the main script
    outside ``if __name__ == "__main__":``; empty otherwise (guarded, an interactive session,
    ``python -c``, ``python -m``, a notebook)."""
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>"
                                     and frame.f_globals.get("__name__") in ("__main__",
                                                                             "__mp_main__")):
        frame = frame.f_back
    path = frame and frame.f_globals.get("__file__")
    if not path or not os.path.isfile(path):
        return ""
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    line = frame.f_lineno
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and node.lineno <= line <= (node.end_lineno or line)
                and any(isinstance(n, ast.Name) and n.id == "__name__"
                        for n in ast.walk(node.test))):
            return ""
    return f"{path} (line {line})"
