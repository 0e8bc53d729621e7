"""A small custom CNN, the kind of network you already have, made shrinkable by tinyformula.

All tinyformula needs is a factory: ``build(depth_multiplier, width_multiplier, num_classes)``
returning an ``nn.Module`` that maps ``(batch, 3, size, size)`` images to ``(batch,
num_classes)`` logits at any ``size`` (the toolkit picks the resolution). How d and w change
the network is yours to decide: here each stage keeps ``max(1, round(n * d))`` of its n blocks
and every width is ``c * w`` rounded to a multiple of 8.

    tinyformula bases examples/tiny_cnn.toml          # the spec file that names this factory
    tinyformula fit --base examples/tiny_cnn.toml --preset smoke --out runs/tiny_cnn
    python3 examples/fit_tiny_cnn.py                  # the same, from Python, end to end

``examples/tiny_cnn_spec.toml`` declares the same network as a spec (counted analytically,
without torch): tests check that both count the same FLOPs and parameters.
"""

from torch import nn

# (output channels, blocks, stride of the first block) per stage
STAGES = ((32, 2, 1), (64, 2, 2), (128, 2, 2), (256, 1, 2))


def round8(value: float) -> int:
    """The nearest multiple of 8 (at least 8), one more 8 if that lost over 10%."""
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


class ConvBlock(nn.Module):
    """3x3 conv, BatchNorm, ReLU; plus the input when stride and width stay (a residual)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))
        return x + y if self.residual else y


class TinyCNN(nn.Module):
    """A stem, four stages of 3x3 conv blocks, global average pooling, a linear classifier."""

    def __init__(self, depth_multiplier: float = 1.0, width_multiplier: float = 1.0,
                 num_classes: int = 10):
        super().__init__()
        cin = round8(32 * width_multiplier)
        self.stem = nn.Sequential(nn.Conv2d(3, cin, 3, 1, 1, bias=False), nn.BatchNorm2d(cin),
                                  nn.ReLU(inplace=True))
        stages = []
        for channels, blocks, stride in STAGES:
            cout = round8(channels * width_multiplier)
            layers = []
            for i in range(max(1, round(blocks * depth_multiplier))):
                layers.append(ConvBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
            stages.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.blocks(self.stem(x))).flatten(1))


def build(depth_multiplier: float, width_multiplier: float, num_classes: int) -> nn.Module:
    """The factory tinyformula calls."""
    return TinyCNN(depth_multiplier, width_multiplier, num_classes)
