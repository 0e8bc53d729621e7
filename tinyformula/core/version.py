"""The toolkit's version (semantic versioning, 0.x: the minor number moves with every change
of the public API or of a file format; CHANGELOG.md says what changed). pyproject.toml holds
the same number (a test checks)."""

VERSION = "0.8.1"
