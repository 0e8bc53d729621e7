"""The one exception type users see: bad input, named with what to do about it."""


class TinyFormulaError(ValueError):
    """Invalid input or state the user can fix; the CLI prints it as one line, exit status 2."""


# Users meet it as ``tinyformula.TinyFormulaError`` (the public API's name), also in tracebacks.
TinyFormulaError.__module__ = "tinyformula"
