"""SQLite files the toolkit owns: recognised before anything is written, errors in one line.

A file the toolkit keeps in SQLite (a search's ``trials.sqlite``; any other database a
command adds) is claimed with an application id (``PRAGMA application_id``, a 32-bit number
in the file's header) when it is created, and every later open first reads the file without
write access and checks that id (:func:`check_application`): another program's SQLite file,
or one with tables of its own, is refused in one line and left byte-identical (no journal,
no lock, no table added). :func:`sqlite_error` turns SQLite's errors into one line saying
what to do (a full disk, a read-only folder, a busy file, a damaged one).

The use, for a new database kind::

    APPLICATION_ID = 0x74466D76          # four letters of its own, unique in the toolkit
    if path.exists():
        reader = connect_read_only(path)
        try:
            check_application(reader, path, APPLICATION_ID, {"meta", "rows"}, "validation store")
        finally:
            reader.close()
    db = sqlite3.connect(path)            # only now, for writing
    claim(db, APPLICATION_ID)

and every ``sqlite3.Error`` raised while using it re-raised as ``sqlite_error(path, error)``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import TinyFormulaError

# SQLite's result codes for "the disk", as opposed to "the file" (sqlite3.h).
DISK_FULL = {13}                   # SQLITE_FULL
NO_ACCESS = {3, 8, 14, 23}         # SQLITE_PERM, _READONLY, _CANTOPEN, _AUTH
DISK_IO = {10, 15}                 # SQLITE_IOERR, _PROTOCOL (locking)
BUSY = {5, 6}                      # SQLITE_BUSY, _LOCKED


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection, made without write access. A WAL database on read-only
    storage cannot make its shared-memory file: it is then opened as immutable (nobody can
    be writing it there)."""
    uri = Path(path).absolute().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db


def tables(db: sqlite3.Connection) -> set[str]:
    """The names of the database's own tables (SQLite's internal ones left out)."""
    return {name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}


def check_application(db: sqlite3.Connection, path: Path, application_id: int,
                      own_tables: set[str], what: str, advice: str = "choose another --out"
                      ) -> set[str]:
    """Refuse (one line) a database that is not a ``what``: another application id, or no
    id (0: an empty database, or one written before ids) and tables that are not among
    ``own_tables``. Returns its tables, for the caller's checks of their columns."""
    application = db.execute("PRAGMA application_id").fetchone()[0]
    found = tables(db)
    if application not in (0, application_id):
        raise TinyFormulaError(f"{path} is another program's SQLite file (application id "
                               f"{application:#x}), not a {what}; tinyformula leaves it "
                               f"alone: {advice}")
    if application == 0 and found - own_tables:
        shown = ", ".join(sorted(found - own_tables)[:3])
        raise TinyFormulaError(f"{path} is another program's SQLite file (tables {shown}), not "
                               f"a {what}; tinyformula leaves it alone: {advice}")
    return found


def claim(db: sqlite3.Connection, application_id: int) -> None:
    """Mark a database the toolkit writes as its own (what :func:`check_application`
    recognises)."""
    db.execute(f"PRAGMA application_id={application_id}")


def sqlite_error(path: Path, error: sqlite3.Error, what: str = "database",
                 kept: str = "", advice: str = "choose another --out") -> TinyFormulaError:
    """One line for an SQLite error on the ``what`` at ``path``, saying what to do;
    ``kept`` says what a full disk leaves saved ("every trial finished before is saved")."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code in DISK_FULL:
        saved = f"; {kept}" if kept else ""
        return TinyFormulaError(f"the disk holding {path} is full{saved}: free some space and "
                                f"run the same command again")
    if code in NO_ACCESS:
        return TinyFormulaError(f"cannot write {path} ({error}): the folder is read-only or not "
                                f"yours; {advice}")
    if code in DISK_IO:
        return TinyFormulaError(f"the disk failed while using {path} ({error}); check it and "
                                f"run the same command again")
    if code in BUSY:
        return TinyFormulaError(f"{path} is in use by another process ({error}); wait for it "
                                f"and run the same command again")
    return TinyFormulaError(f"{path} is not a readable {what} ({error}); move it aside or "
                            f"{advice}")
