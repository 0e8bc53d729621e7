"""Durable storage of a search: one SQLite file, one row per trial, committed as it finishes.

The plan (every trial's candidate and seed) is written in one transaction before training
starts, so a search killed at any moment, even by ``kill -9``, resumes exactly: finished rows
are kept, pending ones are trained. The file also records the search's identity (base, data,
seed, sampler, ...), so a run folder is never reused for a different search.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from .errors import TinyFormulaError

SCHEMA_VERSION = 1
STATUSES = ("pending", "ok", "diverged", "oom", "failed")
TRIAL_COLUMNS = ("id", "candidate", "seed", "r", "d", "w", "c", "resolution", "flops", "params",
                 "status", "top1", "loss", "seconds", "images_per_s", "message", "finished_at")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,          -- execution order
    candidate INTEGER NOT NULL,      -- index into the sampler's stream
    seed INTEGER NOT NULL,           -- training seed (the same for all: common random numbers)
    r REAL NOT NULL, d REAL NOT NULL, w REAL NOT NULL, c REAL NOT NULL,
    resolution INTEGER NOT NULL, flops INTEGER NOT NULL, params INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    top1 REAL, loss REAL, seconds REAL, images_per_s REAL, message TEXT, finished_at REAL,
    UNIQUE (candidate, seed)
);
"""


class TrialStore:
    """A run folder's ``trials.sqlite``. Only the search driver writes it."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._db = connection

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path, create: bool = True) -> "TrialStore":
        """The store at ``path``; ``create=False`` only reads an existing one."""
        path = Path(path)
        if path.is_dir():
            raise TinyFormulaError(f"{path} is a directory, not a trials database")
        if not path.exists() and not create:
            raise TinyFormulaError(f"no search here: {path} does not exist")
        try:
            db = sqlite3.connect(path, isolation_level=None)  # explicit transactions only
            if create:  # the driver's store: durable commits; a reader changes nothing
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM trials").fetchone()
        except sqlite3.DatabaseError as error:
            raise TinyFormulaError(f"{path} is not a readable trials database ({error}); move it "
                                   f"aside or choose another --out") from None
        store = cls(path, db)
        version = store.meta().get("schema_version")
        if version not in (None, SCHEMA_VERSION):
            raise TinyFormulaError(f"{path} was written by another tinyformula (schema "
                                   f"{version}); use a new --out")
        return store

    def close(self) -> None:
        self._db.close()

    # -- identity ------------------------------------------------------------------------------

    def meta(self) -> dict:
        return {key: json.loads(value)
                for key, value in self._db.execute("SELECT key, value FROM meta")}

    def write_plan(self, identity: dict, settings: dict, trials: list[dict]) -> None:
        """Record the search and append planned trials not stored yet, in one transaction."""
        with self._transaction():
            for key, value in {"schema_version": SCHEMA_VERSION, "identity": identity,
                               "settings": settings}.items():
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 (key, json.dumps(value)))
            self._db.executemany(
                "INSERT OR IGNORE INTO trials (id, candidate, seed, r, d, w, c, resolution, "
                "flops, params) VALUES (:id, :candidate, :seed, :r, :d, :w, :c, :resolution, "
                ":flops, :params)", trials)

    # -- trials --------------------------------------------------------------------------------

    def trials(self) -> list[dict]:
        cursor = self._db.execute(f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials ORDER BY id")
        return [dict(zip(TRIAL_COLUMNS, row)) for row in cursor]

    def pending(self) -> list[dict]:
        return [t for t in self.trials() if t["status"] == "pending"]

    def record(self, trial_id: int, result: dict) -> None:
        """Store one finished trial; committed (and synced) before this returns."""
        status = result.get("status", "failed")
        if status not in STATUSES[1:]:
            status = "failed"
        with self._transaction():
            self._db.execute(
                "UPDATE trials SET status=?, top1=?, loss=?, seconds=?, images_per_s=?, "
                "message=?, finished_at=? WHERE id=?",
                (status, result.get("top1"), result.get("loss"), result.get("seconds"),
                 result.get("images_per_s"), result.get("message", ""), time.time(), trial_id))

    def _transaction(self):
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback):
        self.db.execute("ROLLBACK" if kind else "COMMIT")
        return False
