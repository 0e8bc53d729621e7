"""The command line as a user meets it: output, --json, and one-line errors with exit 2."""

import json
import subprocess
import sys

import pytest


def test_flops_json_has_the_documented_keys(cli):
    code, out, _ = cli("flops", "--r", "0.475", "--d", "0.6", "--w", "0.51", "--json")
    assert code == 0
    record = json.loads(out)
    assert list(record) == ["base", "r", "d", "w", "resolution", "flops", "params", "activations",
                            "c", "by_module"]
    assert (record["resolution"], record["flops"], record["params"]) == (106, 25_750_752, 2_042_972)
    assert record["activations"] == 690_452
    assert record["c"] == pytest.approx(25_750_752 / 399_352_864)
    modules = record["by_module"]
    assert [m["module"] for m in modules] == ["stem", "blocks", "head", "pool", "classifier"]
    assert list(modules[0]) == ["module", "flops", "params", "activations"]
    for key in ("flops", "params", "activations"):
        assert sum(m[key] for m in modules) == record[key]


def test_flops_by_module_table(cli):
    code, out, _ = cli("flops", "--base", "resnet50", "--by-module", "2")
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("module"))
    assert lines[header].split() == ["module", "FLOPs", "%", "params", "activations"]
    assert [line.split()[0] for line in lines[header + 1:]] == [
        "stem.0", "stem.1", "stem.2", "stem.3", "blocks.0", "blocks.1", "blocks.2", "blocks.3",
        "pool", "classifier"]
    code, out, _ = cli("flops", "--base", "resnet50")
    assert code == 0 and "blocks.0" not in out  # the table only on request


def test_flops_verify_builds_and_agrees(cli):
    code, out, _ = cli("flops", "--r", "0.5", "--d", "0.5", "--w", "0.5",
                           "--resolution-base", "32", "--num-classes", "10", "--verify", "--json")
    record = json.loads(out)
    assert code == 0 and record["verified"] is True
    assert record["fvcore_flops"] == record["flops"] and record["built_params"] == record["params"]
    assert record["built_activations"] == record["activations"]


def test_flops_text_output(cli):
    code, out, _ = cli("flops", "--r", "0.86", "--d", "1.2", "--w", "1.0")
    assert code == 0
    assert "192 px" in out and "347,712,640" in out and "6,187,972" in out


def test_bases_lists_every_base_with_its_counts(cli):
    code, out, _ = cli("bases", "--json")
    assert code == 0
    names = {record["name"]: record for record in json.loads(out)}
    assert names["efficientnet_b0"]["flops"] == 399_352_864
    assert names["resnet50"]["params"] == 25_557_032
    assert set(names) == {"efficientnet_b0", "mobilenetv2_100", "resnet50", "ghostnet_100",
                          "fd_mobilenet", "mobilenetv3_large_100", "mobilenetv3_small_100",
                          "mobilenetv4_conv_small"}


@pytest.mark.parametrize("argv, message", [
    (["flops", "--r", "nan"], "--r: must be a finite number in (0, 16]"),
    (["flops", "--w", "0"], "--w: must be a finite number in (0, 16]"),
    (["flops", "--d", "-1"], "--d: must be a finite number in (0, 16]"),
    (["flops", "--r", "inf"], "--r: must be a finite number in (0, 16]"),
    (["flops", "--r", "1e308"], "r above 16 makes a 3584 px input"),
    (["flops", "--r", "abc"], "got 'abc'"),
    (["flops", "--base", "vgg"], "unknown base 'vgg'; known bases: efficientnet_b0, "),
    (["flops", "--r", "0.001"], "0-pixel input"),
    (["flops", "--num-classes", "0"], "from 1 to"),
])
def test_bad_input_is_one_line_and_exit_2(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_installed_command_exits_2_without_traceback():
    result = subprocess.run([sys.executable, "-m", "tinyformula.cli", "flops", "--w", "nan"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


PREDICT_KEYS = ["formula", "cost", "budget", "r", "d", "w", "c", "resolution", "flops", "params",
                "r_std", "d_std", "extrapolated", "phi", "top1", "top1_std", "band",
                "budget_as_typed", "unit", "reference", "resolution_base", "num_classes",
                "quality", "validation"]


def test_predict_json(cli):
    code, out, err = cli("predict", "--flops", "0.25", "--json")
    assert code == 0 and err == ""
    record = json.loads(out)
    assert list(record) == PREDICT_KEYS
    assert record["budget"] == 0.25 and 0.98 * 0.25 <= record["c"] <= 0.25
    assert int(224 * record["r"]) == record["resolution"]
    assert record["extrapolated"] is False


def test_predict_text_says_the_builtin_formula_is_imagenets(cli):
    code, out, _ = cli("predict", "--flops", "0.13")
    assert code == 0
    assert "achieved    c = " in out and "ImageNet" in out and "tinyformula fit" in out


def test_predict_warns_when_extrapolating(cli):
    code, out, err = cli("predict", "--flops", "0.03", "--json")
    assert code == 0 and json.loads(out)["extrapolated"] is True
    assert "outside the range the formula was fitted on" in err


def test_predict_with_a_fitted_formula_file(cli, tmp_path):
    from tinyformula.formula.estimator import TinyFormula

    path = TinyFormula.builtin().save(tmp_path / "formula.json")
    code, out, _ = cli("predict", "--flops", "0.25", "--formula", str(path), "--json")
    assert code == 0
    code2, out2, _ = cli("predict", "--flops", "0.25", "--json")
    assert json.loads(out) == json.loads(out2)


def test_predict_on_another_base_needs_a_formula_fitted_on_it(cli, tmp_path):
    import numpy as np

    from tinyformula.formula.estimator import TinyFormula

    code, out, err = cli("predict", "--base", "resnet50", "--flops", "0.25")
    assert code == 2 and "only efficientnet_b0 has a built-in formula" in err
    c = np.geomspace(0.03, 1.0, 6)
    path = TinyFormula("resnet50").fit({"c": c, "r": 0.9 + 0.1 * np.log(c),
                                        "d": 1.0 + 0.1 * np.log(c)}).save(tmp_path / "f.json")
    code, out, _ = cli("predict", "--base", "resnet50", "--formula", str(path),
                           "--flops", "0.25", "--json")
    assert code == 0 and 0.98 * 0.25 <= json.loads(out)["c"] <= 0.25
    code, _, err = cli("predict", "--base", "ghostnet_100", "--formula", str(path),
                           "--flops", "0.25")
    assert code == 2 and "fitted on resnet50, not ghostnet_100" in err


def test_compare_json(cli):
    code, out, _ = cli("compare", "--flops", "0.13", "--json")
    assert code == 0
    tiny, giant = json.loads(out)
    assert tiny["formula"] == "tiny" and giant["formula"] == "giant"
    keys = set(PREDICT_KEYS) - {"quality", "validation"}   # predict's own additions
    assert keys <= set(tiny) and keys <= set(giant)
    assert "phi" in giant and giant["phi"] < 0
    for side in (tiny, giant):
        assert 0.98 * 0.13 <= side["c"] <= 0.13
    assert giant["r"] < tiny["r"] and giant["d"] < tiny["d"]  # giant shrinks r and d harder


def _damaged_formulas(tmp_path):
    from tinyformula.formula.estimator import TinyFormula

    good = TinyFormula.builtin().save(tmp_path / "good.json").read_text()
    (tmp_path / "truncated.json").write_text(good[:100])
    edited = json.loads(good)
    edited["c_range"][0] = 0.001
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    (tmp_path / "old.json").write_text(json.dumps(dict(json.loads(good), version=0)))
    return tmp_path


@pytest.mark.parametrize("command", ["predict", "compare"])
@pytest.mark.parametrize("extra, message", [
    (["--flops", "0"], "finite number above 0"),
    (["--flops", "-1"], "finite number above 0"),
    (["--flops", "nan"], "finite number above 0"),
    (["--flops", "inf"], "finite number above 0"),
    (["--flops", "abc"], "'abc' is not a number"),
    (["--flops", "7"], "shrinks networks"),
    (["--flops", "0.0001"], "no network"),
    (["--flops", "0.2", "--base", "vgg"], "unknown base 'vgg'"),
    (["--flops", "0.2", "--formula", "{tmp}/missing.json"], "no formula file"),
    (["--flops", "0.2", "--formula", "{tmp}"], "is a directory"),
    (["--flops", "0.2", "--formula", "{tmp}/truncated.json"], "not valid JSON"),
    (["--flops", "0.2", "--formula", "{tmp}/edited.json"], "changed after it was written"),
    (["--flops", "0.2", "--formula", "{tmp}/old.json"], "format version 0"),
    ([], "required: --budget"),
])
def test_predict_and_compare_bad_input(cli, tmp_path, command, extra, message):
    folder = _damaged_formulas(tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    argv = [command] + [a.replace("{tmp}", str(folder)) for a in extra]
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
