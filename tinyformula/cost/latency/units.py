"""A network cut into the units a latency table times: its top-level blocks, each at the input
shape it meets, and identical copies of a unit to time it cache-cold."""

from __future__ import annotations

import hashlib
import math

from ...nets.count import layer_cost
from ...nets.layers import Network, Residual, Sequential
from .measure import Setting, last_level_cache_bytes


def _is_container(layer) -> bool:
    """A Sequential whose children are all blocks (a stage list or a stage), not layers."""
    return isinstance(layer, Sequential) and all(
        isinstance(child, (Sequential, Residual)) for child in layer.layers)


def units(network: Network) -> list[tuple[object, tuple]]:
    """The network cut into units, each with the input shape ``(channels, h, w)`` it meets.

    Containers (the stage list, each stage) are opened; everything else at the top of the tree
    (a conv-BN-act stem, a residual or plain block, pooling, a classifier) is one unit.
    """
    found: list[tuple[object, tuple]] = []

    def walk(sequence: Sequential, shape: tuple) -> tuple:
        for child in sequence.layers:
            if _is_container(child):
                shape = walk(child, shape)
            else:
                found.append((child, shape))
                shape = layer_cost(child, shape).shape
        return shape

    walk(network.body, (network.in_channels, network.resolution, network.resolution))
    return found


def unit_key(unit, shape: tuple) -> str:
    """A stable key for a unit at an input shape: a digest of its description and the shape."""
    return hashlib.sha1(f"{shape}|{unit!r}".encode()).hexdigest()[:20]


MAX_COPIES = {"torch": 16, "onnxruntime": 4}  # onnxruntime copies cost an export each


def unit_copies(unit, shape: tuple, setting: Setting, max_copies: int | None = None) -> list:
    """Identical modules for ``unit``, enough that cycling through them (weights and inputs)
    overflows the last-level cache, as the rest of a network does between two calls of a
    block: timed alone and hot, blocks ran 15-80% faster than inside their network."""

    from ...nets.build import build_layer, init_weights

    def make():
        module = build_layer(unit)
        init_weights(module)  # the built network's initialisation
        return module

    first = make()
    size = 4 * (sum(p.numel() for p in first.parameters()) + setting.batch * math.prod(shape))
    cap = MAX_COPIES[setting.runtime] if max_copies is None else max_copies
    count = max(1, min(cap, -(-last_level_cache_bytes() // size)))
    return [first] + [make() for _ in range(count - 1)]
