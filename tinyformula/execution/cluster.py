"""Dask scheduler addresses: parsed and reached before anything is planned or written."""

from __future__ import annotations

from ..core.constraints import Integer, check
from ..core.errors import TinyFormulaError

PORT = Integer(1, 65535, why="a TCP port")


def check_scheduler(address: str) -> tuple[str, str, int]:
    """A Dask scheduler address ``[tcp://]host:port`` (IPv6 hosts in brackets), as
    (protocol, host, port); a one-line error for anything else. Nothing is contacted here."""
    from urllib.parse import urlsplit

    text = address.strip() if isinstance(address, str) else ""
    example = "tcp://host:8786"
    if not text:
        raise TinyFormulaError(f"--scheduler must be an address like {example}, got {address!r}")
    if "://" not in text:
        text = "tcp://" + text
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise TinyFormulaError(f"--scheduler {address!r} is not an address like {example} "
                               f"({error})") from None
    if parts.scheme not in ("tcp", "tls"):
        raise TinyFormulaError(f"--scheduler {address!r}: Dask schedulers speak tcp:// or "
                               f"tls://, not {parts.scheme}://; give {example}")
    if not host or port is None or parts.path not in ("", "/") or parts.query or parts.username:
        raise TinyFormulaError(f"--scheduler {address!r} is not an address like {example} "
                               f"(a host and a port)")
    return parts.scheme, host, check("the --scheduler port", port, PORT)


def reach_scheduler(address: str, timeout: float = 10.0) -> None:
    """Open (and close) a TCP connection to the scheduler, so an unreachable one is reported
    before anything is planned or written."""
    import socket

    _, host, port = check_scheduler(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise TinyFormulaError(f"cannot reach the Dask scheduler at {address} ({reason}); is it "
                               f"running?") from None
