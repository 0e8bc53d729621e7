"""Reader for the IDX format (MNIST, Fashion-MNIST), gzipped or not, with corrupt-file checks."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..core.errors import TinyFormulaError

# Third byte of the magic number: element type; fourth: number of dimensions.
_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed); corrupt files raise a
    :class:`TinyFormulaError` naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise TinyFormulaError(f"cannot read {path}: {error} (corrupt or truncated? "
                               "delete it and fetch it again)") from None
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    def corrupt(why: str):
        return TinyFormulaError(f"{name} is not a valid IDX file: {why} "
                                "(corrupt or truncated? delete it and fetch it again)")

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise corrupt("bad magic number")
    dtype, ndim = _TYPES.get(raw[2]), raw[3]
    if dtype is None or ndim == 0:
        raise corrupt(f"unknown element type 0x{raw[2]:02x} or no dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise corrupt("header cut short")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtype)  # type: ignore[call-overload]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise corrupt(f"{len(raw):,} bytes where shape {shape} needs {expected:,}")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))
