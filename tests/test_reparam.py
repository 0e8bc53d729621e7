"""Re-parameterisation (nets/reparam.py): branched modules for every base, folded exactly back
onto the plain network's structure, costs and outputs."""

import copy

import pytest
import torch
from torch import nn

from tinyformula import create_model, fvcore_flops, list_bases, param_count
from tinyformula.nets.reparam import (
    RepConv,
    branch_count,
    eligible,
    fold,
    reparameterise,
    unit_variance,
)

# Every built-in base, so a base added later (a new block kind) is folded and tested too.
BASES = tuple(list_bases())
SMALL = dict(r=0.5, d=0.5, w=0.25)   # 16 px at a 32 px base


def small(base, seed=0):
    return create_model(base, num_classes=10, resolution_base=32, seed=seed, **SMALL)


def exercised(model, resolution, steps=3):
    """Move every BatchNorm away from its initial state: random affine weights, then running
    statistics from a few train-mode batches (as training would)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=generator) - 0.5)
        model.train()
        for _ in range(steps):
            model(torch.randn(8, 3, resolution, resolution, generator=generator))
    return model.eval()


@pytest.mark.parametrize("base", BASES)
def test_folding_lands_on_the_plain_network_with_its_outputs_and_costs(base, one_thread):
    plain = small(base)
    resolution = plain.tinyformula["resolution"]
    shapes = {k: v.shape for k, v in plain.state_dict().items()}
    branched = exercised(reparameterise(small(base), branches=2, seed=3), resolution)
    assert branch_count(branched) > 0
    x = torch.randn(4, 3, resolution, resolution, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = branched(x)
        folded = fold(copy.deepcopy(branched)).eval()
        got = folded(x)
    assert branch_count(folded) == 0
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()
    # The plain structure: same names, shapes, module types; loads into the plain network.
    assert {k: v.shape for k, v in folded.state_dict().items()} == shapes
    assert [type(m) for m in folded.modules()] == [type(m) for m in plain.modules()]
    plain.load_state_dict(folded.state_dict())
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), got)
    # Costs: the cost model's count of the plain network, by fvcore and by parameters.
    assert fvcore_flops(folded, resolution) == plain.tinyformula["flops"]
    assert param_count(folded) == plain.tinyformula["params"]
    assert param_count(branched) > param_count(folded)


def test_the_folded_batchnorm_is_exactly_a_bias():
    for eps in (1e-5, 1e-3, 1e-1):
        v = torch.tensor(unit_variance(eps), dtype=torch.float32)
        assert v + torch.tensor(eps, dtype=torch.float32) == 1.0
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)
    rep = RepConv(conv, nn.BatchNorm2d(6), branches=1)
    with torch.no_grad():
        rep.norms[0].bias.uniform_(-1, 1)
    _, norm = rep.folded()
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        assert torch.equal(norm.eval()(x), x + norm.bias[None, :, None, None])


def test_which_branches_each_convolution_gets():
    def rep(cin, cout, k, stride, groups):
        conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        return RepConv(conv, nn.BatchNorm2d(cout), branches=3)

    dw = rep(8, 8, 3, 1, 8)
    assert dw.branches == 3 and dw.scale is not None and dw.skip is not None
    dw2 = rep(8, 8, 5, 2, 8)
    assert dw2.scale is not None and dw2.skip is None          # stride 2: no identity
    pw = rep(8, 16, 1, 1, 1)
    assert pw.scale is None and pw.skip is None                # 1x1: no 1x1 branch; 8 != 16
    assert rep(8, 8, 1, 1, 1).skip is not None                 # 1x1, 8 -> 8: identity
    # Not depthwise, not 1x1 (a stem's 3x3), a conv with bias, a BN of other width: left alone.
    assert not eligible(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8))
    assert not eligible(nn.Conv2d(8, 8, 1, bias=True), nn.BatchNorm2d(8))
    assert not eligible(nn.Conv2d(8, 8, 3, 1, 0, groups=8, bias=False), nn.BatchNorm2d(8))
    with pytest.raises(ValueError, match="whole number from 1"):
        RepConv(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8), branches=0)


def test_every_branch_learns_and_the_first_starts_as_the_plain_pair(one_thread):
    plain = small("efficientnet_b0")
    branched = reparameterise(small("efficientnet_b0"), branches=2, seed=0)
    first = next(m for m in branched.modules() if isinstance(m, RepConv))
    name = next(n for n, m in branched.named_modules() if m is first)
    assert torch.equal(first.convs[0].weight, plain.get_submodule(name).weight)
    x = torch.randn(4, 3, 16, 16)
    branched.train()(x).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in branched.parameters())


def test_branches_are_drawn_from_the_seed_and_never_twice():
    a = reparameterise(small("ghostnet_100"), branches=2, seed=5)
    b = reparameterise(small("ghostnet_100"), branches=2, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))
    with pytest.raises(ValueError, match="already re-parameterised"):
        reparameterise(a, branches=2)
    plain = small("fd_mobilenet")
    before = copy.deepcopy(plain.state_dict())
    fold(plain)                                               # nothing to fold: unchanged
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())
