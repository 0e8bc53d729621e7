"""The ``tinyformula`` command: one module per command, each with ``register(subparsers)`` and
``run(args)``; :data:`COMMANDS` is their table, in the order ``--help`` lists them.

Every command has ``--help``; where its output is data it has ``--json``. Bad input ends with
one line on stderr and exit status 2, never a traceback: so does every OSError, OverflowError,
UnicodeError and ValueError (a full disk, a corrupt file); anything else is a bug and keeps its
traceback. SIGTERM is handled like Ctrl-C (exit status 143, 130 for Ctrl-C). A command's
module imports what is heavy (torch, the search) inside ``run``: building the parser stays
light, and ``tinyformula predict`` answers without torch.
"""

from __future__ import annotations

import errno
import os
import sys
from importlib import import_module

from ..core.errors import TinyFormulaError
from ..core.signals import exit_status, stop_signals
from ..core.version import VERSION as __version__
from .arguments import EXIT_BAD_INPUT, Parser

COMMANDS = ("bases", "flops", "fit", "predict", "compare", "train", "build", "export", "plot",
            "latency", "zoo", "data", "validate", "pool")


def build_parser() -> Parser:
    parser = Parser(
        prog="tinyformula",
        description="Find the best way to shrink a network to a compute budget "
                    "(the Tiny Formula of TinyNet, NeurIPS 2020).")
    parser.add_argument("--version", action="version", version=f"tinyformula {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Run one command; its exit status. ``exiting``: this process ends right after (the
    console entry point), so a stop signal's ignoring lasts to the end."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in model cards
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    command = f"tinyformula {args.command}"
    if sys.stdout is None or sys.stdout.closed:  # started with stdout closed (`>&-`)
        print(f"{command}: error: standard output is closed; nothing would be seen",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with stop_signals(restore=not exiting):
            return args.run(args)
    except TinyFormulaError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, OverflowError, UnicodeError, ValueError) as error:
        # What user input (a path, a file, a number) can provoke beyond the checks: one line.
        # BrokenPipeError (a reader that left, as `| head` does) is an OSError too.
        if isinstance(error, BrokenPipeError):
            _silence_stdout()
        else:
            print(f"{command}: error: {_describe(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as stop:
        # One policy for every command: 143 for SIGTERM, 130 for Ctrl-C, one line with what
        # the command noted (where its finished work is kept).
        status, word = exit_status(stop)
        note = getattr(stop, "note", "")
        print(f"{command}: {word}" + (f"; {note}" if note else ""), file=sys.stderr)
        return status
    except (MemoryError, RuntimeError) as error:
        if not _out_of_memory(error):
            raise
        print(f"{command}: error: out of memory ({_describe(error)[:160]}); use smaller sizes "
              f"(--batch-size, --batch, --images, r, d, w)", file=sys.stderr)
        return EXIT_BAD_INPUT


def _describe(error: BaseException) -> str:
    """An exception as one short line: the OS's words and the file for an OSError."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        text = f"{error.strerror}{where}"
        if error.errno == errno.ENOSPC:
            text += " (free some space and run the same command again)"
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _out_of_memory(error: BaseException) -> bool:
    """An allocator's failure (what the size checks bound from below cannot always foresee):
    Python's MemoryError, torch's CPU allocator or CUDA out of memory."""
    text = str(error)
    return isinstance(error, MemoryError) or "can't allocate memory" in text \
        or "out of memory" in text.lower()


def _silence_stdout() -> None:
    """After a broken pipe, send what is left to /dev/null: no second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _entry() -> None:
    sys.exit(main(exiting=True))


if __name__ == "__main__":
    _entry()
