"""Regenerate tinyformula/formulas/efficientnet_b0.json from the published TinyNet A-E.

    python scripts/make_builtin_formula.py

tests/test_formula.py checks that the shipped file predicts as a fresh fit does.
"""

from pathlib import Path

from tinyformula import fit_builtin

path = Path(__file__).resolve().parents[1] / "tinyformula" / "formulas" / "efficientnet_b0.json"
fit_builtin().save(path)
print(f"wrote {path}")
