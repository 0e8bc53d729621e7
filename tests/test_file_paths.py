"""One path for every file read or written (issue #25), checked in the source.

The battery (``test_battery*.py``, ``test_faults.py``) tests the file kinds that exist; this
test keeps new ones on the same path. It reads every module with ``ast`` and fails on

* a call that writes a file (``open(..., "w")``, ``Path.write_text``, ``torch.save(x, path)``,
  ``savefig(path)``, ``to_csv``, ``np.save``, ``os.replace``, ``sqlite3.connect``, ...)
  outside ``core/files.py``: every file goes through ``core.files.write_atomically`` (made in
  memory, replaced atomically, only over a file of its own ``FileKind``; a full disk, quota or
  read-only file system in one line). Serialising into an in-memory handle is fine: a call
  whose target is a name ``handle``/``buffer`` (what ``write_atomically`` passes) or an
  ``io.BytesIO()``;
* a module that opens an SQLite file without recognising it by its application id first
  (``core.databases``: ``connect_read_only``, ``check_application``, ``claim``);
* a module that parses a file (``core.files.read_json_file``, ``json.load(s)``,
  ``torch.load``, ``np.load``, ``pickle``, ``onnx.load``, ``sqlite3.connect``, ``pd.read_*``)
  without validating what it read against a declared schema (``core.schema.validate``).

The exceptions are listed below, each with its reason; a new one needs one too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinyformula"

# call name (the end of its dotted name) -> index of the argument that names the file written
# (None: the call writes by itself, whatever its arguments)
WRITERS = {"write_text": None, "write_bytes": None, "touch": None, "savefig": 0, "to_csv": 0,
           "to_json": 0, "to_parquet": 0, "savetxt": 0, "savez": 0, "savez_compressed": 0,
           "tofile": 0, "dump": 1, "rename": None, "replace": None, "copy": None,
           "copyfile": None, "copy2": None, "copytree": None, "move": None, "mkstemp": None,
           "NamedTemporaryFile": None, "memmap": None, "open_memmap": None}
QUALIFIED_WRITERS = {"torch.save": 1, "torch.jit.save": 1, "np.save": 0, "numpy.save": 0,
                     "onnx.save": 1, "onnx.save_model": 1, "torch.onnx.export": 2,
                     "sqlite3.connect": None, "os.open": None, "os.replace": None,
                     "os.rename": None, "shutil.copy": None, "shutil.move": None}
IN_MEMORY = {"handle", "buffer"}
READERS = ("json.load", "json.loads", "torch.load", "torch.jit.load", "np.load", "numpy.load",
           "pickle.load", "pickle.loads", "pickle.Unpickler", "onnx.load",
           "onnx.load_from_string", "sqlite3.connect", "pd.read_csv", "pd.read_json",
           "pd.read_parquet", "tomllib.load", "tomllib.loads", "yaml.safe_load", "read_json_file",
           "files.read_json_file")

# module (path under tinyformula/) -> why it writes outside core/files.py
WRITES_ALLOWED = {
    "core/files.py": "the atomic writer itself",
    "core/databases.py": "connect_read_only opens SQLite files without write access (mode=ro, "
                         "or immutable on read-only storage)",
    "core/locks.py": "a lock file with no content; the kernel releases the lock however a "
                     "process ends",
    "sweep/store.py": "the trials store is SQLite (transactions are its atomicity); it carries "
                      "an application id checked before writing, and sqlite_error turns a "
                      "full disk or a read-only folder into one line",
    "data/fashion_mnist.py": "a download is written to a .part file, checked as IDX, then "
                             "renamed: a failed one (full disk included) is one line and "
                             "leaves no file under the real name",
    "data/prepare.py": "a prepared cache's image arrays are gigabytes, written in place into "
                       "preallocated files under a .partial folder (they cannot be made in "
                       "memory); the folder is renamed into place and its manifest, which "
                       "makes it a cache, is written through write_atomically, so an "
                       "interrupted preparation never reads as complete",
    "data/decode.py": "the decoding processes of data/prepare.py write their rows into its "
                      "preallocated arrays (same reason)",
    "data/cache.py": "opens the cache's arrays read-only (os.O_RDONLY) to map them",
    "sweep/validation/store.py": "the validation store is SQLite like the trials store: "
                                 "recognised by its application id (core.databases) before "
                                 "anything is written; transactions are its atomicity",
}
# module -> why it parses a file without core.schema.validate
READS_ALLOWED = {
    "core/files.py": "read_json serves FileKind recognisers: any failure means 'not this kind'",
    "core/databases.py": "connect_read_only serves readers that validate what they read (the "
                         "store's meta against META, its rows against TRIAL_ROW)",
    "core/folders.py": "the folder marker is checked key by key (format, kind, made_by)",
    "formula/estimator.py": "the built-in formula ships inside the package and goes through "
                            "from_dict, which validates it (formula/file_format.py)",
    # Debt (issue 25's rule not yet applied to readers that arrived with issues 20, 22 and
    # 23): each checks what it reads by hand, field by field, not against a declared schema.
    "data/cache.py": "DEBT: the cache manifest is checked by its own checksum and by hand "
                     "(format, version, splits); labels by dtype and length",
    "data/mapped.py": "DEBT: labels read from a cache whose manifest data/cache.py checked",
    "data/prepare.py": "DEBT: its own resume files (plan, progress, bad images) under the "
                       ".partial folder, checked by hand",
    "formula/zoo.py": "zoo formulas ship inside the package and go through TinyFormula."
                      "from_dict (the formula file's schema); their evidence is shown, not used",
    "nets/bases/files.py": "DEBT: a spec file is read field by field by the spec reader, "
                           "every error naming its field",
    "sweep/validation/result.py": "DEBT: validation.json as this toolkit wrote it, read back "
                                  "for plotting and reporting",
    "sweep/validation/store.py": "the store's meta is checked key by key (format, schema "
                                 "version, identity) before any row is used",
}


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def in_memory(node: ast.AST) -> bool:
    return ((isinstance(node, ast.Name) and node.id in IN_MEMORY)
            or (isinstance(node, ast.Call) and dotted(node.func).endswith("BytesIO")))


def target(call: ast.Call, index: int | None) -> ast.AST | None:
    if index is None:
        return None
    if index < len(call.args):
        return call.args[index]
    names = {0: ("fname", "file", "path", "path_or_buf"), 1: ("f", "fp", "file"),
             2: ("f",)}.get(index, ())
    return next((k.value for k in call.keywords if k.arg in names), None)


def opens_for_writing(call: ast.Call) -> bool:
    name = dotted(call.func)
    if name not in ("open", "io.open") and not name.endswith(".open"):
        return False
    mode = call.args[1] if len(call.args) > 1 and name in ("open", "io.open") else (
        call.args[0] if call.args and name not in ("open", "io.open") else None)
    mode = next((k.value for k in call.keywords if k.arg == "mode"), mode)
    return (isinstance(mode, ast.Constant) and isinstance(mode.value, str)
            and any(flag in mode.value for flag in "wax+"))


def writes(call: ast.Call) -> bool:
    name = dotted(call.func)
    if opens_for_writing(call):
        return True
    if name in QUALIFIED_WRITERS:
        index = QUALIFIED_WRITERS[name]
    elif isinstance(call.func, ast.Attribute) and call.func.attr in WRITERS and not (
            call.func.attr in ("dump", "replace", "copy", "rename")
            and not name.startswith(("json.", "pickle.", "os.", "shutil.", "Path"))):
        # dump/replace/copy/rename are common method names: only json/pickle/os/shutil's
        index = WRITERS[call.func.attr]
    else:
        return False
    if call.args and dotted(call.args[0]) == "os.devnull":
        return False
    where = target(call, index)
    return where is None or not in_memory(where)


def findings(path: Path) -> tuple[list[str], list[str]]:
    """(writing calls, reading calls) in the module at ``path``, as 'line: call'."""
    tree = ast.parse(path.read_text(), str(path))
    written, read = [], []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if writes(node):
            written.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
        if dotted(node.func) in READERS:
            read.append(f"{node.lineno}: {ast.unparse(node)[:80]}")

    def line(text: str) -> int:
        return int(text.split(":")[0])

    return sorted(written, key=line), sorted(read, key=line)


def validates(path: Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    return any(isinstance(node, ast.Name | ast.Attribute) and dotted(node).split(".")[-1]
               == "validate" for node in ast.walk(tree))


MODULES = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_every_file_is_written_through_the_atomic_writer(module):
    written, _ = findings(PACKAGE / module)
    assert not written or module in WRITES_ALLOWED, (
        f"tinyformula/{module} writes files itself ({'; '.join(written)}): write through "
        f"tinyformula.core.files.write_atomically(path, content_or_writer, kind) (models: "
        f"models.files.save_torch; figures: core.figures.save_figure; output folders: "
        f"core.folders.check_folder then mark_folder), or add it to WRITES_ALLOWED with why")


@pytest.mark.parametrize("module", MODULES)
def test_every_file_parsed_is_validated_against_a_schema(module):
    _, read = findings(PACKAGE / module)
    assert not read or module in READS_ALLOWED or validates(PACKAGE / module), (
        f"tinyformula/{module} parses a file ({'; '.join(read)}) without a declared schema: "
        f"check what it read with tinyformula.core.schema.validate(value, SCHEMA, origin, "
        f"advice) before using it, or add it to READS_ALLOWED with why")


@pytest.mark.parametrize("module", MODULES)
def test_every_sqlite_file_is_recognised_before_it_is_written(module):
    tree = ast.parse((PACKAGE / module).read_text())
    names = {dotted(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    if "sqlite3.connect" not in names or module == "core/databases.py":
        return
    assert {"check_application", "connect_read_only", "claim"} <= {
        name.split(".")[-1] for name in names}, (
        f"tinyformula/{module} opens an SQLite file: read it first with "
        f"core.databases.connect_read_only and check_application (its own application id), "
        f"claim(db, APPLICATION_ID) when creating it, and raise sqlite_error(path, error) for "
        f"every sqlite3.Error")


def test_the_exceptions_are_still_needed():
    """An exception whose module no longer writes (or parses) is dropped from the list."""
    for module in WRITES_ALLOWED:
        assert findings(PACKAGE / module)[0], f"{module} no longer needs WRITES_ALLOWED"
    for module in READS_ALLOWED:
        assert findings(PACKAGE / module)[1], f"{module} no longer needs READS_ALLOWED"


def test_the_guard_catches_what_it_names(tmp_path):
    """A test must be able to fail: the patterns it is for are caught."""
    source = tmp_path / "m.py"
    source.write_text("import json, torch\n"
                      "def f(p, obj, fig):\n"
                      "    open(p, 'w').write('x')\n"
                      "    p.write_text('x')\n"
                      "    torch.save(obj, p)\n"
                      "    fig.savefig(p)\n"
                      "    torch.save(obj, handle)\n"
                      "    fig.savefig(buffer)\n"
                      "    open(p).read()\n"
                      "    return json.loads(p.read_text())\n")
    written, read = findings(source)
    assert [line.split(":")[0] for line in written] == ["3", "4", "5", "6"]
    assert len(read) == 1 and not validates(source)
