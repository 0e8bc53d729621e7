"""Any PyTorch model as a base: a factory's module counted by tracing equals the same network
declared as a spec, the shape-only count equals fvcore's (or fvcore is used), the base travels to
worker processes and formula files by its factory's import path, and bad factories are one line.
"""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyformula import Scale, TinyFormulaError, get_base, list_bases, register_base
from tinyformula.execution.jobs import DataSource, TrialJob, TrialState
from tinyformula.execution.worker import run_trial
from tinyformula.nets.bases import base_record, unregister_base
from tinyformula.nets.build import activation_counts, fvcore_flops
from tinyformula.nets.shape_count import shape_count
from tinyformula.training.config import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def registered():
    before = set(list_bases())
    yield
    for name in set(list_bases()) - before:
        unregister_base(name)


@pytest.fixture(scope="module")
def tiny():
    """examples/tiny_cnn.toml (traced) and examples/tiny_cnn_spec.toml (the same as a spec)."""
    traced = get_base(str(EXAMPLES / "tiny_cnn.toml"))
    spec = get_base(str(EXAMPLES / "tiny_cnn_spec.toml"))
    yield traced, spec
    unregister_base("tiny_cnn")
    unregister_base("tiny_cnn_spec")


@pytest.mark.parametrize("r, d, w", [(1, 1, 1), (0.25, 0.25, 0.25), (0.6, 2.7, 0.41),
                                     (2.2, 0.5, 1.9), (0.33, 1.6, 3.3)])
def test_traced_count_equals_the_same_network_as_a_spec(tiny, r, d, w):
    traced, spec = tiny
    assert traced.counted == "traced" and spec.counted == "analytic"
    assert traced.cost(Scale(r, d, w), 10, 32) == spec.cost(Scale(r, d, w), 10, 32)


def test_traced_base_is_checked_against_fvcore_and_cached(tiny):
    traced, _ = tiny
    traced.cost(Scale(0.5, 1, 1), 10, 32)
    assert traced.method == "shape" and "equal to fvcore" in traced.note
    counts = traced.counts
    traced.cost(Scale(0.5, 1, 1.001), 10, 32)    # the same network: no new count
    assert traced.counts == counts and traced.seconds_per_count > 0
    assert traced.structure(Scale(w=1.0), 10) == traced.structure(Scale(w=1.001), 10)
    assert traced.structure(Scale(w=1.0), 10) != traced.structure(Scale(w=1.5), 10)
    model = traced.build(Scale(0.5, 1, 1), 10, 32)
    assert model.input_resolution == 16
    assert fvcore_flops(model, 16) == traced.cost(Scale(0.5, 1, 1), 10, 32).flops


class Functional(nn.Module):
    """Functional ops fvcore counts: matmul, einsum, bmm, layer/group norm, interpolate."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.proj = nn.Parameter(torch.randn(8, 8))
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.norm(self.conv(x))
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        tokens = x.flatten(2).transpose(1, 2)                 # (b, hw, 8)
        tokens = self.ln(tokens @ self.proj)
        attn = torch.einsum("bnc,bmc->bnm", tokens, tokens).softmax(-1)
        tokens = torch.bmm(attn, tokens)
        return self.fc(F.adaptive_avg_pool2d(tokens.transpose(1, 2).unsqueeze(-1), 1).flatten(1))


def test_shape_only_count_equals_fvcore_on_functional_ops():
    model = Functional().eval()
    with torch.device("meta"):
        light = Functional().eval()
    flops, activations, output = shape_count(light, 12)
    assert tuple(output.shape) == (1, 10)
    assert flops == fvcore_flops(model, 12)
    assert activations == sum(activation_counts(model, 12).values())



@pytest.mark.parametrize("call", [
    lambda x: F.conv2d(x, torch.empty(8, 3, 3, 3, device="meta"), None, 2, 1),
    lambda x: F.conv2d(x, torch.empty(8, 1, 5, 3, device="meta"), None, (2, 1), (2, 0), (1, 2),
                       3),
    lambda x: F.conv2d(x, torch.empty(8, 3, 1, 1, device="meta"), padding="same"),
    lambda x: F.batch_norm(x, torch.empty(3, device="meta"), torch.empty(3, device="meta")),
    lambda x: F.hardswish(x) + x,
    lambda x: x.mul_(x),
])
def test_the_meta_shortcut_gives_the_shapes_the_kernels_give(call):
    """The shape-only count skips some meta kernels (slow Python reference code) and computes
    their output's shape itself: the same shapes as running them."""
    from tinyformula.nets.shape_count import _Counter

    x = torch.empty(2, 3, 17, 12, device="meta")
    expected = call(x.clone())
    with _Counter():
        got = call(x.clone())
    assert got.shape == expected.shape and got.dtype == expected.dtype and got.is_meta

class WithAttention(nn.Module):
    """Attention through ``F.multi_head_attention_forward``: its matrix products run inside one
    Python function, which the shape-only count cannot open (fvcore's jit trace does): the
    base falls back to fvcore."""

    def __init__(self, d=1.0, w=1.0, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 2, 1)
        self.attn = nn.MultiheadAttention(16, 2)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        tokens = self.conv(x).flatten(2).permute(2, 0, 1)          # (hw, b, 16)
        a = self.attn
        out, _ = F.multi_head_attention_forward(
            tokens, tokens, tokens, 16, 2, a.in_proj_weight, a.in_proj_bias, None, None, False,
            0.0, a.out_proj.weight, a.out_proj.bias, training=False, need_weights=True)
        return self.fc(out.mean(0))


def test_a_module_the_shape_count_cannot_see_into_is_counted_by_fvcore(registered):
    base = register_base("attention", factory=WithAttention, resolution=16)
    cost = base.cost(Scale(), 10, 16)
    assert base.method == "fvcore" and "differs" in base.note
    model = WithAttention().eval()
    assert cost.flops == fvcore_flops(model, 16) > 0


def test_a_traced_base_travels_to_a_worker_and_trains(tiny, registered):
    traced, _ = tiny
    record = base_record("tiny_cnn")
    assert record["kind"] == "traced" and record["spec"]["factory"].endswith("tiny_cnn.py:build")
    job = TrialJob(id=0, base="tiny_cnn", base_record=record, scale=Scale(0.5, 0.5, 0.5),
                   resolution_base=32, data=DataSource("digits", validation=64),
                   train=TrainConfig(train_size=64, epochs=1, seed=0, batch_size=32))
    job = pickle.loads(pickle.dumps(job))        # as a worker process receives it
    unregister_base("tiny_cnn")
    result = run_trial(job, threads=1)
    assert result.state is TrialState.OK, result.message
    assert get_base("tiny_cnn").method == "shape"      # trusted: not re-checked by fvcore
    # A fresh process imports the factory from the record alone.
    code = ("import json\n"
            "from tinyformula.nets.bases import restore_base, get_base\n"
            f"name = restore_base(json.loads({json.dumps(json.dumps(record))}), 'x', True)\n"
            "print(get_base(name).counted, get_base(name).factory.__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["traced", "build"]


def test_a_lambda_factory_is_usable_here_and_says_it_cannot_travel(registered):
    base = register_base("lambda_net", factory=lambda d, w, k: nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, k)),
        resolution=16)
    assert base.cost(Scale(), 10, 16).params == 3 * 8 * 9 + 8 + 8 * 10 + 10
    record = base_record("lambda_net")
    assert record["spec"]["factory"] is None
    unregister_base("lambda_net")
    from tinyformula.nets.bases import restore_base

    with pytest.raises(TinyFormulaError, match="cannot be imported by name"):
        restore_base(record, "formula.json")


# -- bad factories -------------------------------------------------------------------------------

def raises(d, w, k):
    raise RuntimeError("out of ideas")


def not_a_module(d, w, k):
    return 42


def wrong_shape(d, w, k):
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, k + 1))


def fixed_size(d, w, k):   # a flattened 32x32 map: breaks at any other input size
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 32 * 32, k))


def keeps_no_batch(d, w, k):
    class First(nn.Module):
        def forward(self, x):
            return x[:1].mean((2, 3))[:, :1].expand(1, k)
    return First()


@pytest.mark.parametrize("factory, message", [
    (raises, r"factory\(d=1, w=1, num_classes=10\) raised RuntimeError: out of ideas"),
    (not_a_module, "returned int, not a torch.nn.Module"),
    (wrong_shape, r"returned shape \(1, 11\).*expected \(1, 10\)"),
    (fixed_size, "at r = d = w = 1 \\(8 px, 10 classes\\): the module's forward pass raised"),
    (keeps_no_batch, r"returned shape \(1, 10\) for a batch of 2"),
], ids=["raises", "not-a-module", "wrong-shape", "fixed-size", "drops-the-batch"])
def test_bad_factories_are_refused_in_one_line(factory, message, registered):
    with pytest.raises(TinyFormulaError, match=message) as error:
        register_base("bad", factory=factory, resolution=32)
    assert "\n" not in str(error.value) and "bad" not in list_bases()


@pytest.mark.parametrize("factory", ["raises", "not_a_module", "wrong_shape"])
def test_a_spec_file_naming_a_bad_factory_exits_2_and_writes_nothing(factory, tmp_path, cli):
    (tmp_path / "nets.py").write_text(Path(__file__).read_text())
    spec = tmp_path / "bad.toml"
    spec.write_text(f'name = "bad"\nfactory = "nets.py:{factory}"\nresolution = 32\n')
    out = tmp_path / "run"
    code, _, err = cli("fit", "--base", str(spec), "--preset", "smoke", "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_missing_factory_names_it(tmp_path, cli):
    spec = tmp_path / "gone.toml"
    spec.write_text('name = "gone"\nfactory = "no_such_module_here:build"\n')
    code, _, err = cli("bases", str(spec))
    assert code == 2 and "cannot import the factory 'no_such_module_here:build'" in err


def test_latency_refuses_a_traced_base(tiny):
    from tinyformula import Yardstick

    with pytest.raises(TinyFormulaError, match="counted by tracing"):
        Yardstick("tiny_cnn", 10, 32, cost="latency")
