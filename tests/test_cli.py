"""The command line as a user meets it: output, --json, and one-line errors with exit 2."""

import json
import subprocess
import sys

import pytest

from tinyformula.cli import main


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse exits on usage errors and --help
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_flops_json_has_the_documented_keys(capsys):
    code, out, _ = run_cli(capsys, "flops", "--r", "0.475", "--d", "0.6", "--w", "0.51", "--json")
    assert code == 0
    record = json.loads(out)
    assert list(record) == ["base", "r", "d", "w", "resolution", "flops", "params", "c"]
    assert (record["resolution"], record["flops"], record["params"]) == (106, 25_750_752, 2_042_972)
    assert record["c"] == pytest.approx(25_750_752 / 399_352_864)


def test_flops_verify_builds_and_agrees(capsys):
    code, out, _ = run_cli(capsys, "flops", "--r", "0.5", "--d", "0.5", "--w", "0.5",
                           "--resolution-base", "32", "--num-classes", "10", "--verify", "--json")
    record = json.loads(out)
    assert code == 0 and record["verified"] is True
    assert record["fvcore_flops"] == record["flops"] and record["built_params"] == record["params"]


def test_flops_text_output(capsys):
    code, out, _ = run_cli(capsys, "flops", "--r", "0.86", "--d", "1.2", "--w", "1.0")
    assert code == 0
    assert "192 px" in out and "347,712,640" in out and "6,187,972" in out


def test_bases_lists_efficientnet(capsys):
    code, out, _ = run_cli(capsys, "bases", "--json")
    assert code == 0
    names = {record["name"]: record for record in json.loads(out)}
    assert names["efficientnet_b0"]["flops"] == 399_352_864


@pytest.mark.parametrize("argv, message", [
    (["flops", "--r", "nan"], "r must be a finite number above 0"),
    (["flops", "--w", "0"], "w must be a finite number above 0"),
    (["flops", "--d", "-1"], "d must be a finite number above 0"),
    (["flops", "--r", "inf"], "r must be a finite number above 0"),
    (["flops", "--r", "abc"], "'abc' is not a number"),
    (["flops", "--base", "vgg"], "unknown base 'vgg'; known bases: efficientnet_b0"),
    (["flops", "--r", "0.001"], "0-pixel input"),
    (["flops", "--num-classes", "0"], "must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
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
