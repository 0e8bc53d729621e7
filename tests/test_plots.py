"""The plot command and the Pareto-front notebook, on a run folder written without training.

The folder holds real candidates (the search's own sampler and cost model) with made-up top-1
scores, written through the search's own store and formula: a finished search in seconds, whose
contents the tests control (one trial is exactly the giant formula's network at c = 0.25).
"""

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tinyformula import Yardstick
from tinyformula.core.errors import TinyFormulaError
from tinyformula.execution.jobs import TrialResult, TrialState
from tinyformula.formula.estimator import TinyFormula
from tinyformula.formula.solve import solve_giant
from tinyformula.sweep.config import SearchConfig
from tinyformula.sweep.pareto import pareto_frontier
from tinyformula.sweep.results import load_run
from tinyformula.sweep.space import plan_candidates
from tinyformula.sweep.store import TrialStore

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "pareto_fronts.ipynb"
CONFIG = SearchConfig(base="efficientnet_b0", data="fashion-mnist", preset="smoke", seed=0,
                      trials=30).resolved()
YARDSTICK = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)




def write_run(folder: Path, pending: int = 0, formula: bool = True, config=CONFIG,
              yardstick=YARDSTICK) -> Path:
    """A finished search folder (or one with ``pending`` trials left, or without the formula
    a frontier too small leaves out) without training."""
    candidates = plan_candidates(yardstick, 30, c_range=(0.03, 1.0), seed=0)
    _, giant = solve_giant(yardstick, 0.25)
    plan = [(i, 0, config) for i, config in enumerate(candidates + [giant])]
    plan += [(i, 1, plan[i][2]) for i in (0, 1)]  # replicates: the noise
    rng = random.Random(0)
    folder.mkdir(parents=True)
    store = TrialStore.open(folder / "trials.sqlite")
    try:
        planned = store.merge_plan(config, plan)
        store.write_plan(config, yardstick, planned)
        for trial in planned[:len(planned) - pending]:
            top1 = min(0.95, 0.7 + 0.08 * math.log(trial.config.c) + rng.gauss(0, 0.05))
            store.record(TrialResult(trial.id, TrialState.OK, top1=top1, loss=1.0, seconds=1.0))
        trials = store.trials()
    finally:
        store.close()
    if formula and not pending:
        frontier = pareto_frontier(trials, seed=0)
        TinyFormula.for_yardstick(yardstick, source="test frontier").fit(
            {key: [getattr(t.config, key) for t in frontier] for key in ("c", "r", "d")}).save(
            folder / "formula.json")
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("plots") / "run")


def check_png(path: Path) -> None:
    """A real picture: a PNG of a sensible size with many colours, not a blank canvas."""
    import numpy as np
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert height >= 400 and width >= 800, (path, pixels.shape)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, (path, len(colours))
    assert (pixels[..., :3] < 0.5).mean() > 0.005, path  # some ink: text, axes, points


def test_plot_writes_three_pictures_and_lists_them(run_dir, cli):
    code, out, err = cli("plot", str(run_dir))
    assert code == 0, err
    paths = [Path(line) for line in out.splitlines()]
    assert [p.name for p in paths] == ["top1_vs_flops.png", "formula_vs_c.png",
                                       "top1_at_c0.5.png"]
    for path in paths:
        assert path.parent == run_dir / "plots"
        check_png(path)
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == sorted(p.name for p in paths)


def test_plot_json_and_budget(run_dir, cli):
    code, out, err = cli("plot", str(run_dir), "--budget", "0.13", "--json")
    assert code == 0, err
    paths = json.loads(out)
    assert len(paths) == 3 and paths[2].endswith("top1_at_c0.13.png")
    check_png(Path(paths[2]))


def test_giant_marks_carry_accuracy_only_where_a_trial_built_that_network(run_dir):
    from tinyformula.viz.data import giant_marks

    marks = {m.giant.budget: m for m in giant_marks(load_run(run_dir))}
    assert sorted(marks) == [0.06, 0.13, 0.25, 0.5]
    trials = load_run(run_dir).trials
    trained = trials[trials["candidate"] == 30].iloc[0]
    assert marks[0.25].trial_id == trained["id"] and marks[0.25].top1 == trained["top1"]
    for c in (0.06, 0.13, 0.5):
        assert marks[c].top1 is None and marks[c].trial_id is None


def test_formula_curves_follow_the_formula_and_the_giant_solver(run_dir):
    from tinyformula.viz.data import formula_curves

    run = load_run(run_dir)
    curves = formula_curves(run, points=5)
    r, d = run.formula.predict(curves["c"])
    assert list(curves["r"]) == list(r) and list(curves["d"]) == list(d)
    assert curves["w"][2] == run.formula.recommend(float(curves["c"][2])).w
    _, giant = solve_giant(YARDSTICK, float(curves["c"][2]))
    assert curves["giant_w"][2] == giant.w


def test_trials_near_a_budget_use_the_window_in_log_c(run_dir):
    from tinyformula.viz.data import trials_near

    run = load_run(run_dir)
    near = trials_near(run, 0.25, 1.25)
    assert len(near) and near["c"].between(0.2, 0.3125).all()
    ok = run.trials[run.trials["c"].between(0.2, 0.3125)]
    assert set(near["id"]) == set(ok["id"])


@pytest.mark.parametrize("argv, message", [
    (["MISSING"], "no run folder"),
    (["EMPTY"], "holds no search"),
    (["RUN", "--budget", "0.001"], "no trial"),
    (["RUN", "--budget", "nan"], "budget"),
    (["RUN", "--budget", "abc"], "got 'abc'"),
    (["RUN", "--window", "1"], "window"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, tmp_path, cli):
    folder = tmp_path / argv[0].lower()
    if argv[0] == "EMPTY":
        folder.mkdir()
    elif argv[0] != "MISSING":
        write_run(folder, pending=3 if argv[0] == "PARTIAL" else 0,
                  formula=argv[0] != "NOFORMULA")
    code, out, err = cli("plot", str(folder), *argv[1:])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (folder / "plots").exists()


def test_a_failed_write_leaves_no_file(run_dir, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from tinyformula import viz as plots

    def broken(self, handle, **kwargs):
        handle.write(b"\x89PNG half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(TinyFormulaError, match="cannot write .*disk full"):
        plots.plot_run(run_dir, out=tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_importing_the_cli_does_not_import_matplotlib():
    code = ("import sys, tinyformula.cli; "
            "print(sorted(m for m in ('matplotlib', 'torch', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


def test_the_notebook_runs_top_to_bottom(run_dir, monkeypatch, tmp_path):
    nbclient = pytest.importorskip(
        "nbclient", reason="the notebook test needs nbclient: pip install -e '.[notebook]'")
    nbformat = pytest.importorskip("nbformat",
                                   reason="needs nbformat: pip install -e '.[notebook]'")
    pytest.importorskip("ipykernel", reason="needs ipykernel: pip install -e '.[notebook]'")
    monkeypatch.setenv("TINYFORMULA_RUN", str(run_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # the three figures, inline
    html = "".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
    assert "giant" in html and "built-in (ImageNet)" in html  # tiny against giant, side by side
    assert not (tmp_path / "runs").exists()  # it read the run it was given, made none


@pytest.mark.parametrize("kind", ["PARTIAL", "NOFORMULA"])
def test_a_run_without_a_formula_draws_its_trials_and_says_why(kind, tmp_path, cli):
    folder = write_run(tmp_path / "run", pending=3 if kind == "PARTIAL" else 0,
                       formula=kind != "NOFORMULA")
    code, out, err = cli("plot", str(folder))
    assert code == 0, err
    paths = [Path(line) for line in out.splitlines()]
    assert [p.name for p in paths] == ["top1_vs_flops.png", "top1_at_c0.5.png"]
    for path in paths:
        check_png(path)
    assert "formula_vs_c.png is not drawn" in err and len(err.strip().splitlines()) == 1
