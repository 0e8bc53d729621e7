"""Durable storage of a validation's trainings: ``validation.sqlite``, one row per (network,
seed, schedule), committed as each finishes.

The rows a validation needs are written in one transaction before any trains, so a validation
killed at any moment (``kill -9`` included) resumes where it stopped: finished rows are kept,
pending ones trained, nothing finished is trained again. A row is keyed by what decides its
score (the network, the seed, the images and passes), so a later validation in the same
folder with other formulas, budgets or seeds trains only what it has not trained yet. The file
records the settings every row shares (base, data, classes, batch size, what it is scored on):
a folder holding other ones is refused, never overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from ...core.databases import check_application, claim, connect_read_only
from ...core.errors import TinyFormulaError
from ...execution.jobs import TrialResult, TrialState
from ..store import _Transaction, sqlite_error
from .plan import Training

FORMAT = "tinyformula-validation"
SCHEMA_VERSION = 1
NAME = "validation.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trainings (
    id INTEGER PRIMARY KEY,          -- planning order
    network TEXT NOT NULL,           -- digest of the network's input size and layer tree
    seed INTEGER NOT NULL,
    train_size INTEGER NOT NULL,     -- distinct training images
    epochs INTEGER NOT NULL,         -- passes over them
    r REAL NOT NULL, d REAL NOT NULL, w REAL NOT NULL, c REAL NOT NULL,
    resolution INTEGER NOT NULL, flops INTEGER NOT NULL, params INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    top1 REAL, loss REAL, seconds REAL, images_per_s REAL, message TEXT, finished_at REAL,
    UNIQUE (network, seed, train_size, epochs)
);
"""
RESULT_COLUMNS = ("status", "top1", "loss", "seconds", "images_per_s", "message", "finished_at")


APPLICATION_ID = 0x74465661   # "tFVa": a validation store (core.databases)
OWN_TABLES = {"meta", "trainings"}


class ValidationStore:
    """A folder's ``validation.sqlite``. Only the validation driver writes it."""

    def __init__(self, path: Path, db: sqlite3.Connection):
        self.path = path
        self._db = db
        self._ours = False   # set once the file is known to be ours: only then is it changed

    @classmethod
    def open(cls, path, identity: dict) -> "ValidationStore":
        """The store at ``path`` (created if missing), refused when it holds trainings of
        another identity or is not a validation store."""
        path = Path(path)
        if path.is_dir():
            raise TinyFormulaError(f"{path} is a directory, not a validation store")
        tables: set[str] = set()
        if path.exists():  # recognised (read only) before anything is written to it
            try:
                reader = connect_read_only(path)
                try:
                    tables = check_application(reader, path, APPLICATION_ID, OWN_TABLES,
                                               "validation store")
                finally:
                    reader.close()
            except sqlite3.Error as error:
                raise sqlite_error(path, error) from None
        try:
            db = sqlite3.connect(path, isolation_level=None)  # explicit transactions only
        except sqlite3.Error as error:
            raise sqlite_error(path, error) from None
        store = cls(path, db)
        try:
            if tables:
                store.check(identity)  # before anything is written to it
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            store._ours = True
            db.executescript(_SCHEMA)
            claim(db, APPLICATION_ID)
        except sqlite3.Error as error:
            store.close()
            raise sqlite_error(path, error) from None
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        if self._ours:
            try:  # the file alone is then the whole store
                self._db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.Error:
                pass
        self._db.close()

    def meta(self) -> dict:
        try:
            if not self._db.execute("SELECT count(*) FROM sqlite_master WHERE type='table' "
                                    "AND name='meta'").fetchone()[0]:
                return {}
            return {key: json.loads(value)
                    for key, value in self._db.execute("SELECT key, value FROM meta")}
        except (sqlite3.Error, ValueError) as error:
            raise TinyFormulaError(f"{self.path} is not a readable validation store "
                                   f"({error}); move it aside or choose another --out") from None

    def check(self, identity: dict) -> None:
        meta = self.meta()
        if not meta:
            return
        if meta.get("format") != FORMAT or meta.get("schema_version") != SCHEMA_VERSION:
            raise TinyFormulaError(f"{self.path} was not written by this tinyformula's validate "
                                   f"(format {meta.get('format')!r}, schema "
                                   f"{meta.get('schema_version')!r}); choose another --out")
        theirs = meta.get("identity", {})
        differ = sorted(k for k in set(theirs) | set(identity)
                        if theirs.get(k) != identity.get(k))
        if differ:
            shown = ", ".join(f"{k}: {theirs.get(k)!r} there, {identity.get(k)!r} here"
                              for k in differ)
            raise TinyFormulaError(f"{self.path.parent} holds the validation of other trainings "
                                   f"({shown}); choose another --out")

    def write_plan(self, identity: dict, trainings: Sequence[Training]) -> None:
        """Record the identity and add the trainings not stored yet, in one transaction."""
        rows = [{"network": t.network, "seed": t.seed, "train_size": t.schedule.train_size,
                 "epochs": t.schedule.epochs, "r": t.config.r, "d": t.config.d,
                 "w": t.config.w, "c": t.config.c, "resolution": t.config.resolution,
                 "flops": t.config.flops, "params": t.config.params} for t in trainings]
        with _Transaction(self._db, self.path):
            for key, value in {"format": FORMAT, "schema_version": SCHEMA_VERSION,
                               "identity": identity}.items():
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 (key, json.dumps(value)))
            self._db.executemany(
                "INSERT OR IGNORE INTO trainings (network, seed, train_size, epochs, r, d, w, "
                "c, resolution, flops, params) VALUES (:network, :seed, :train_size, :epochs, "
                ":r, :d, :w, :c, :resolution, :flops, :params)", rows)

    def rows(self) -> dict[tuple[str, int, int, int], dict]:
        """Every stored training by its key (network, seed, train_size, epochs)."""
        cursor = self._db.execute(
            f"SELECT id, network, seed, train_size, epochs, {', '.join(RESULT_COLUMNS)} "
            f"FROM trainings ORDER BY id")
        names = ("id", "network", "seed", "train_size", "epochs", *RESULT_COLUMNS)
        return {(row[1], row[2], row[3], row[4]): dict(zip(names, row)) for row in cursor}

    def record(self, row_id: int, result: TrialResult) -> None:
        """Store one finished training, committed before this returns."""
        state = TrialState(result.state)
        if state is TrialState.PENDING:
            raise ValueError(f"training {row_id}: a result cannot be pending")
        with _Transaction(self._db, self.path):
            self._db.execute(
                "UPDATE trainings SET status=?, top1=?, loss=?, seconds=?, images_per_s=?, "
                "message=?, finished_at=? WHERE id=?",
                (state.value, result.top1, result.loss, result.seconds, result.images_per_s,
                 result.message, time.time(), row_id))
