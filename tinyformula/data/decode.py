"""Decoding one photo into a square uint8 ``(3, S, S)`` array, and the worker side of a
parallel preparation (:mod:`.prepare`): each worker decodes a chunk of files and writes every
image straight into its row of the cache's preallocated array file (``os.pwrite``), so no
pixels travel back through a pipe. Imports neither torch nor the rest of the package's
layers above ``core``: a worker process starts in a fraction of a second.

Every image is converted to RGB, its shorter side resized to ``S`` (bilinear, antialiased when
shrinking, as :func:`PIL.Image.Image.resize` does) and centre-cropped square. A JPEG is decoded
in PIL's draft mode when ``draft`` is on: libjpeg scales it down by 1/2, 1/4 or 1/8 in the
DCT while decoding, but never below :data:`DRAFT_MARGIN` x ``S`` on the shorter side, so the
final resize still shrinks it at least twofold and sharp edges come out as without draft mode
(measured in ``experiments/bench_data.py``: drafting down to ``S`` itself changed edge pixels
by up to 137 levels). A JPEG whose shorter side is under ``4 S`` decodes exactly as without it.
"""

from __future__ import annotations

import os

import numpy as np

DRAFT_MARGIN = 2   # draft mode keeps at least twice the stored size on the shorter side


def read_image(path: str, size: int, draft: bool = True) -> np.ndarray:
    """The image at ``path`` as uint8 ``(3, size, size)``; unreadable or truncated files raise
    whatever PIL raises (``OSError``, ``ValueError``, ``Image.DecompressionBombError``)."""
    from PIL import Image

    with Image.open(path) as image:
        if draft and image.format == "JPEG":
            image.draft("RGB", (DRAFT_MARGIN * size, DRAFT_MARGIN * size))
        image = image.convert("RGB")
        w, h = image.size
        scale = size / min(w, h)
        w2, h2 = max(size, round(w * scale)), max(size, round(h * scale))
        image = image.resize((w2, h2), Image.Resampling.BILINEAR, reducing_gap=None)
        left, top = (w2 - size) // 2, (h2 - size) // 2
        image = image.crop((left, top, left + size, top + size))
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


# -- the worker side of a parallel preparation ----------------------------------------------------

_STATE: dict = {}


def set_up(targets: dict, size: int, draft: bool) -> None:
    """Where :func:`decode_chunk` writes: ``targets`` maps a split to ``(array file, data
    offset)``; images are ``size`` px a side."""
    close_files()
    _STATE.update(targets=targets, size=size, draft=draft, fds={})


def init_decoder(targets: dict, size: int, draft: bool) -> None:
    """Pool initializer: :func:`set_up`, and Ctrl-C left to the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_up(targets, size, draft)


def close_files() -> None:
    for fd in _STATE.get("fds", {}).values():
        os.close(fd)
    _STATE.clear()


def _fd(split: str) -> int:
    fds = _STATE["fds"]
    if split not in fds:
        fds[split] = os.open(_STATE["targets"][split][0], os.O_WRONLY)
    return fds[split]


def decode_chunk(chunk: list[tuple[int, str, int, str]]) -> list[tuple[int, str]]:
    """Decode ``(entry, split, row, path)`` items into their rows; returns ``(entry, error)``
    for each, the error empty when the image was written. A write that fails (a full disk)
    raises: that ends the preparation, not one image."""
    size, draft = _STATE["size"], _STATE["draft"]
    row_bytes = 3 * size * size
    done = []
    for entry, split, row, path in chunk:
        try:
            pixels = read_image(path, size, draft)
        except Exception as error:  # PIL raises many kinds for a bad file; each is data here
            message = f"{type(error).__name__}: {error}".splitlines()[0][:200]
            done.append((entry, message or type(error).__name__))
            continue
        data = pixels.tobytes()
        offset = _STATE["targets"][split][1] + row * row_bytes
        written = os.pwrite(_fd(split), data, offset)
        if written != row_bytes:
            raise OSError(f"short write to {_STATE['targets'][split][0]}")
        done.append((entry, ""))
    return done
