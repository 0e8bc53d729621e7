"""``python -m tinyformula.cli``: the command line."""

from . import _entry

if __name__ == "__main__":
    _entry()
