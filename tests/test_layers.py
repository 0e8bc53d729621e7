"""The package's layers, checked: every module imports only from its own layer or those below,
and no two modules import each other, directly or round a circle.

The layers, bottom up (docs/architecture.md is this list):

    core -> nets -> cost -> formula -> data -> models -> training -> execution -> sweep
    -> viz -> cli

and the package's top level (the public API) above them all. Imports are read with ``ast``
from every module, those inside functions included (a local import is still an import). The
names a package exports lazily (listed under ``typing.TYPE_CHECKING`` in its ``__init__``) count
as its imports; elsewhere an import under ``TYPE_CHECKING`` only names a type in an annotation
and is left out.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinyformula"
LAYERS = ("core", "nets", "cost", "formula", "data", "models", "training", "execution",
          "sweep", "viz", "cli")
TOP = len(LAYERS)  # the package's own __init__ and __main__


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else TOP


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports (a name imported from a package that
    is itself a module counts as that module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    if path.name != "__init__.py":
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                       for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != module}
    return found


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_every_module_belongs_to_a_layer():
    strays = [m for m in GRAPH if layer(m) == TOP and m not in ("tinyformula",
                                                                 "tinyformula.__main__")]
    assert not strays, f"modules outside every layer: {strays}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_down_the_layers(module):
    upward = sorted(t for t in GRAPH[module] if layer(t) > layer(module))
    assert not upward, (f"{module} ({LAYERS[layer(module)] if layer(module) < TOP else 'top'}) "
                        f"imports from a layer above it: {upward}")


def test_no_import_circles():
    # Tarjan's strongly connected components: any component of two or more is a circle.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


def test_the_formula_layer_never_imports_torch():
    for module, path in modules().items():
        if layer(module) == LAYERS.index("formula"):
            tree = ast.parse(path.read_text())
            names = {alias.name.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, (ast.Import, ast.ImportFrom))
                     for alias in (node.names if isinstance(node, ast.Import) else
                                   [ast.alias(node.module or "")])}
            assert "torch" not in names, f"{module} imports torch"


def test_importing_the_package_and_building_the_parser_import_no_torch():
    import subprocess

    code = ("import sys, tinyformula, tinyformula.cli as cli; cli.build_parser(); "
            "tinyformula.TinyFormula.builtin().recommend(0.25); "
            "print(sorted({'torch', 'sklearn', 'numpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_the_public_api_is_the_top_level():
    import tinyformula

    exported = set(tinyformula._EXPORTS)
    assert set(tinyformula.__all__) == exported | {"__version__"}
    for name in sorted(exported):
        assert getattr(tinyformula, name) is not None, name
    # A layer's package must not shadow a public name once it is imported.
    import tinyformula.sweep.driver  # noqa: F401

    assert callable(tinyformula.search) and tinyformula.search.__module__.endswith("driver")
