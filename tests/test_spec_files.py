"""Bases from spec files and register_base: the built-in bases as specs reproduce 0.2.0's counts
exactly, spec files read back as the built-in bases, a spec travels with run folders, formula
files and model files, and bad specs are refused in one line naming the field, exit status 2,
nothing written."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import tinyformula
from tinyformula import Scale, TinyFormula, TinyFormulaError, Yardstick, get_base, list_bases
from tinyformula.nets.bases import (
    BUILTIN,
    base_record,
    is_builtin,
    register_base,
    restore_base,
    unregister_base,
)
from tinyformula.nets.bases.declared import stage_blocks
from tinyformula.nets.bases.files import read_spec_file
from tinyformula.nets.bases.netspec import NetworkSpec
from tinyformula.nets.bases.spec import parse_stage
from tinyformula.nets.count import module_costs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "bases"
FROZEN = json.loads((Path(__file__).parent / "data" / "builtin_counts_0.2.0.json").read_text())
OLD_BASES = ["efficientnet_b0", "mobilenetv2_100", "resnet50", "ghostnet_100", "fd_mobilenet"]

TINY = {"name": "tinyspec", "resolution": 32, "stem": {"channels": 16},
        "stages": ["ds_r1_k3_s1_c16", "ir_r2_k3_s2_e4_c24_se0.25", "cn_r1_k1_s1_c64"]}


@pytest.fixture
def registered():
    """Bases registered by a test are forgotten after it."""
    before = set(list_bases())
    yield
    for name in set(list_bases()) - before:
        unregister_base(name)


def _modules_digest(network) -> str:
    rows = module_costs(network, 2)
    return hashlib.sha256(json.dumps(
        [[m.module, m.flops, m.params, m.activations] for m in rows]).encode()).hexdigest()[:16]


def test_frozen_counts_cover_the_five_bases_of_0_2_0():
    assert {r["base"] for r in FROZEN} == set(OLD_BASES) and len(FROZEN) == 120


@pytest.mark.parametrize("record", FROZEN, ids=lambda r: f"{r['base']}-{r['r']}-{r['d']}-"
                                                       f"{r['w']}-{r['resolution_base']}")
def test_builtin_specs_reproduce_0_2_0_counts_exactly(record):
    base = get_base(record["base"])
    scale = Scale(record["r"], record["d"], record["w"])
    cost = base.cost(scale, record["num_classes"], record["resolution_base"])
    assert (cost.resolution, cost.flops, cost.params, cost.activations) == (
        record["resolution"], record["flops"], record["params"], record["activations"])
    # Module by module, names included (model files of 0.2.0 load into the same modules).
    network = base.network(scale, record["num_classes"], record["resolution_base"])
    assert _modules_digest(network) == record["modules"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_example_spec_files_are_the_builtin_bases(path):
    spec = NetworkSpec.from_dict(read_spec_file(path), str(path))
    builtin = BUILTIN[spec.name]
    assert spec.to_dict() == builtin.spec.to_dict()
    assert get_base(str(path)) is builtin          # the same base, not a second one
    for scale in (Scale(), Scale(0.5, 0.6, 0.35), Scale(1.3, 2.2, 1.7)):
        assert builtin.layers(scale, 10) == type(builtin)(spec).layers(scale, 10)


def test_every_builtin_base_has_an_example_file():
    assert {p.stem for p in EXAMPLES.glob("*.toml")} == set(BUILTIN)


def test_toml_and_json_of_one_spec_are_one_base(tmp_path, registered):
    json_path = tmp_path / "tinyspec.json"
    json_path.write_text(json.dumps(TINY))
    toml_path = tmp_path / "tinyspec.toml"
    toml_path.write_text('name = "tinyspec"\nresolution = 32\nstages = ["ds_r1_k3_s1_c16", '
                         '"ir_r2_k3_s2_e4_c24_se0.25", "cn_r1_k1_s1_c64"]\n\n'
                         '[stem]\nchannels = 16\n')
    a, b = get_base(str(json_path)), get_base(str(toml_path))
    assert a is b and a.name == "tinyspec" and "tinyspec" in list_bases()
    assert a.default_resolution == 32 and a.counted == "analytic"


def test_stage_depth_rules_follow_timm_and_ghostnet():
    a, b = parse_stage("ir_r1_k3_s2_e4_c24"), parse_stage("ir_r2_k3_s1_e3_c24")
    # timm's _scale_stage_depth: 3 blocks at d = 2 -> ceil 6, shared out last string first.
    assert [s is a for s in stage_blocks((a, b), 2.0, "ceil", "distribute")] == [
        True, True, False, False, False, False]
    assert len(stage_blocks((a, b), 0.1, "ceil", "distribute")) == 2   # each keeps one
    # GhostNet's cycle: the first block, then the others in order, cycled.
    c = parse_stage("ir_r1_k3_s1_e6_c24")
    assert stage_blocks((a, b, c), 2.0, "round", "cycle") == [a, b, b, c, b, b, c, b]
    assert stage_blocks((a, b, c), 0.3, "round", "cycle") == [a]


def test_spec_record_travels_and_rebuilds_the_same_base(registered):
    base = register_base(spec=TINY)
    record = base_record("tinyspec")
    assert record["kind"] == "spec" and base_record("efficientnet_b0") is None
    yardstick = Yardstick("tinyspec", 10, 32)
    stored = yardstick.to_dict()
    assert stored["base_spec"] == record and "base_spec" not in Yardstick().to_dict()
    unregister_base("tinyspec")
    assert Yardstick.from_dict(stored).base == "tinyspec"          # registered from the record
    assert get_base("tinyspec").layers(Scale(), 10) == base.layers(Scale(), 10)
    edited = json.loads(json.dumps(record))
    edited["spec"]["stem"]["channels"] = 24
    with pytest.raises(TinyFormulaError, match="checksum"):
        restore_base(edited, "x")
    edited["checksum"] = tinyformula.core.files.checksum(edited["spec"])
    with pytest.raises(TinyFormulaError, match="other than the one registered"):
        restore_base(edited, "a formula")


def test_formula_file_of_a_spec_base_predicts_without_the_spec(tmp_path, registered):
    path = tmp_path / "tinyspec.json"
    path.write_text(json.dumps(TINY))
    formula = TinyFormula(base=get_base(str(path)).name, resolution_base=32, num_classes=10)
    formula.fit({"c": [0.1, 0.3, 0.6, 0.9], "r": [0.6, 0.8, 1.0, 1.1],
                 "d": [0.5, 0.7, 0.9, 1.0]})
    formula.save(tmp_path / "formula.json")
    path.unlink()   # the spec file is gone: the formula file carries the spec
    code = ("import json, sys\n"
            "from tinyformula.cli import main\n"
            f"sys.exit(main(['predict', '--formula', {str(tmp_path / 'formula.json')!r}, "
            "'--flops', '0.5', '--json']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    entry = answer[0] if isinstance(answer, list) else answer
    assert entry["formula"] == "tiny" and 0.4 < entry["c"] <= 0.5 and entry["w"] > 0


def test_a_changed_spec_of_the_same_name_is_another_search(tmp_path, registered):
    from tinyformula.sweep.config import SearchConfig
    from tinyformula.sweep.store import TrialStore

    path = tmp_path / "mine.json"
    path.write_text(json.dumps(TINY))
    config = SearchConfig(base=str(path), preset="smoke", trials=2, out=str(tmp_path)).resolved()
    assert config.base == "tinyspec" and "base_spec" in config.identity()
    store = TrialStore.open(tmp_path / "trials.sqlite")
    store.write_plan(config, Yardstick("tinyspec", 10, 32), [])
    store.close()
    unregister_base("tinyspec")
    changed = dict(TINY, stem={"channels": 24})
    path.write_text(json.dumps(changed))
    store = TrialStore.open(tmp_path / "trials.sqlite", create=False)
    with pytest.raises(TinyFormulaError, match="other than the one registered"):
        get_base(str(path))
        store.config()
    store.close()


def test_counting_a_spec_file_base_imports_no_torch(tmp_path):
    path = tmp_path / "tinyspec.toml"
    path.write_text('name = "tinyspec"\nstages = ["ir_r2_k3_s2_e4_c24"]\n[stem]\nchannels = 16\n')
    code = ("import sys, tinyformula\n"
            f"base = tinyformula.get_base({str(path)!r})\n"
            "base.cost(tinyformula.Scale(0.5, 2.0, 0.3))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_register_base_refuses_clashes(registered):
    register_base(spec=TINY)
    assert register_base(spec=dict(TINY)) is get_base("tinyspec")     # the same spec: fine
    with pytest.raises(TinyFormulaError, match="registered already"):
        register_base(spec=dict(TINY, stem={"channels": 8}))
    assert register_base(spec=dict(TINY, stem={"channels": 8}), replace=True).spec.stem.channels \
        == 8
    with pytest.raises(TinyFormulaError, match="built-in base"):
        register_base(spec=dict(TINY, name="efficientnet_b0"))
    assert is_builtin("efficientnet_b0")


def test_bases_command_lists_file_and_registered_bases(tmp_path, cli, registered):
    path = tmp_path / "tinyspec.json"
    path.write_text(json.dumps(TINY))
    code, out, err = cli("bases", str(path), "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["tinyspec"]["source"] == str(path) and rows["tinyspec"]["counted"] == "analytic"
    cost = get_base("tinyspec").cost()
    assert (rows["tinyspec"]["flops"], rows["tinyspec"]["params"]) == (cost.flops, cost.params)
    assert rows["mobilenetv4_conv_small"]["flops"] == 189_981_440
    code, out, err = cli("bases", "--spec", "ghostnet_100")
    assert code == 0 and json.loads(out)["name"] == "ghostnet_100"


def test_flops_build_and_predict_accept_a_spec_file(tmp_path, cli, registered):
    path = tmp_path / "tinyspec.toml"
    path.write_text('name = "tinyspec"\nresolution = 32\nstages = ["ir_r2_k3_s2_e4_c24"]\n'
                    '[stem]\nchannels = 16\n')
    code, out, err = cli("flops", "--base", str(path), "--r", "0.5", "--json", "--verify")
    assert code == 0, err
    assert json.loads(out)["base"] == "tinyspec" and json.loads(out)["verified"]
    model_path = tmp_path / "model.pt"
    code, out, err = cli("build", "--base", str(path), "--w", "0.5", "--num-classes", "10",
                         "--out", str(model_path))
    assert code == 0, err
    unregister_base("tinyspec")
    model = tinyformula.load_model(model_path)       # the model file carries the spec
    assert model.tinyformula["base"] == "tinyspec" and "base_spec" in model.tinyformula


# -- bad input ---------------------------------------------------------------------------------

def _with(**changes):
    spec = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        if value is None:
            spec.pop(key)
        else:
            spec[key] = value
    return spec


BAD_SPECS = [
    (_with(stages=["xx_r1_k3_s1_c16"]), r"stages\[0\].*unknown block kind 'xx'"),
    (_with(stages=["ir_r1_k3_s1_e4_c0"]), r"stages\[0\].*channels \(c\) must be above 0"),
    (_with(stages=["ir_r1_k3_s1_e4_c-8"]), r"stages\[0\].*bad option 'c-8'"),
    (_with(stem={"channels": 0}), r"stem\.channels must be a whole number"),
    (_with(stem={"channels": -16}), r"stem\.channels must be a whole number"),
    (_with(stages=None), r"missing field 'stages'"),
    (_with(stem=None), r"missing field 'stem'"),
    (_with(stem={"kernel": 3}), r"missing field 'stem\.channels'"),
    (_with(name=None), r"missing field 'name'"),
    (_with(stemm={"channels": 8}), r"unknown field 'stemm'"),
    (_with(head={"conv": 1280, "widht": "fixed"}), r"unknown field 'head\.widht'"),
    (_with(stages=["ir_r1_k3_e4_c16"]), r"stages\[0\].*lacks s"),
    (_with(stages=[["ir_r1_k3_s2_c16", "ir_r1_k3_s2_c16"]]),
     r"stages\[0\]\[1\].*only a stage's first block string may have a stride"),
    (_with(act="gelu"), r"act must be one of"),
    (_with(scaling={"depth": "floor"}), r"scaling\.depth must be one of"),
    (_with(stages=[]), r"stages must be a non-empty list"),
    # 32 px at r = 0.25 is 8 px: three stride-2 stages leave 1x1, and a 2x2 conv no output.
    (_with(stages=["ds_r1_k3_s2_c16", "ds_r1_k3_s2_c16", "cn_r1_k2_s1_c16"]),
     r"stages\[2\] at 8 px.*vanishes"),
]


@pytest.mark.parametrize("spec, message", BAD_SPECS, ids=lambda v: str(v)[:40])
def test_bad_specs_are_one_line_naming_the_field(spec, message, registered):
    with pytest.raises(TinyFormulaError, match=message) as error:
        register_base(spec=spec)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("spec, message", BAD_SPECS[:4] + BAD_SPECS[-1:],
                         ids=lambda v: str(v)[:40])
def test_fit_with_a_bad_spec_file_exits_2_and_writes_nothing(spec, message, tmp_path, cli):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "run"
    code, stdout, err = cli("fit", "--base", str(path), "--preset", "smoke", "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and not out.exists()


@pytest.mark.parametrize("text, message", [
    ("name = 'x'\nstages = [", "not valid TOML"),
    ("[1, 2]", "one table of fields"),
])
def test_malformed_spec_files(text, message, tmp_path, cli):
    path = tmp_path / ("bad.toml" if "stages" in text else "bad.json")
    path.write_text(text)
    code, _, err = cli("bases", str(path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_missing_spec_file_names_it(cli, tmp_path):
    code, _, err = cli("flops", "--base", str(tmp_path / "nope.toml"))
    assert code == 2 and "no spec file at" in err


def test_a_map_that_vanishes_only_at_the_datasets_smallest_input_is_refused(tmp_path, cli,
                                                                             registered):
    # Fine at 224 px (checked at 56 when read); on 32 px data the search draws 8 px inputs.
    spec = dict(_with(stages=["ds_r1_k3_s2_c16", "ds_r1_k3_s2_c16", "cn_r1_k2_s1_c16"]),
                resolution=224)
    path = tmp_path / "late.json"
    path.write_text(json.dumps(spec))
    assert get_base(str(path)).cost().flops > 0
    out = tmp_path / "run"
    code, _, err = cli("fit", "--base", str(path), "--data", "digits", "--preset", "smoke",
                       "--out", str(out))
    assert code == 2 and "stages[2] at 8 px" in err and "vanishes" in err, err
    assert not out.exists()
