"""Durable storage of a search: one SQLite file, one row per trial, committed as it finishes.

The plan (every trial's candidate, seed and rung) is written in one transaction before
training starts (with successive halving, one rung's plan at a time), so a search killed at any
moment, even by ``kill -9``, resumes exactly: finished rows are kept, pending ones are trained.
The file also records the search's identity (base, data, seed, sampler, schedule, ...), so a
run folder is never reused for a different search.

Schema 2 keys a row by (candidate, seed, rung) and stores the images it trained on. A schema-1
file (no rung, one row per (candidate, seed)) is read as rung 0 of a full schedule, and is
rebuilt as schema 2 in the transaction that first writes a plan into it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from ..core import databases
from ..core.constraints import Integer
from ..core.databases import check_application, claim, connect_read_only
from ..core.errors import TinyFormulaError
from ..core.schema import Record, validate
from ..cost.yardstick import Configuration, Yardstick, restore_recorded_base
from ..execution.jobs import TrialResult, TrialState
from .config import SearchConfig
from .migrations import LEGACY_SCHEMAS, legacy_columns, migrate_schema1
from .trials import COLUMNS, TRIAL_ROW, PlannedTrial, Trial

SCHEMA_VERSION = 2
# SQLite's application id (a 32-bit number in the file's header, "PRAGMA application_id"):
# how a trials store is told from another program's SQLite file before anything is written.
APPLICATION_ID = 0x74466D6C   # "tFml"
OWN_TABLES = {"meta", "trials"}
META = Record({}, optional={"schema_version": Integer(1, 10_000), "identity": Record({}),
                            "settings": Record({})})
"""What the ``meta`` table holds (its values are JSON)."""

_TRIALS_TABLE = """
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,          -- execution order
    candidate INTEGER NOT NULL,      -- index into the sampler's stream
    seed INTEGER NOT NULL,           -- training seed (the same for all: common random numbers)
    rung INTEGER NOT NULL DEFAULT 0, -- successive halving's rung (0 for the full schedule)
    images INTEGER,                  -- training images x epochs this row trains on
    r REAL NOT NULL, d REAL NOT NULL, w REAL NOT NULL, c REAL NOT NULL,
    resolution INTEGER NOT NULL, flops INTEGER NOT NULL, params INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    top1 REAL, loss REAL, seconds REAL, images_per_s REAL, message TEXT, finished_at REAL,
    UNIQUE (candidate, seed, rung)
)"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{_TRIALS_TABLE};
"""


# identity keys a `tinyformula fit` flag of the same name sets (so a refusal can say the flag)
_FLAGS = frozenset({"base", "data", "seed", "sampler", "c_range", "train_size", "epochs",
                    "batch_size", "val_size", "cost", "schedule", "eta", "min_images",
                    "min_rung"})


def _flag_value(value) -> str:
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) \
        if isinstance(value, list) else str(value)


class TrialStore:
    """A run folder's ``trials.sqlite``. Only the search driver writes it."""

    def __init__(self, path: Path, connection: sqlite3.Connection, writer: bool = True):
        self.path = path
        self._db = connection
        self._writer = writer

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path, create: bool = True) -> "TrialStore":
        """The store at ``path``; ``create=False`` only reads an existing one, and never needs
        write access (a finished run on read-only storage reads as well as any)."""
        path = Path(path)
        if path.is_dir():
            raise TinyFormulaError(f"{path} is a directory, not a trials database")
        if not path.exists() and not create:
            raise TinyFormulaError(f"no search here: {path} does not exist")
        if path.exists():  # recognised as a trials store (read only) before anything is written
            try:
                reader = connect_read_only(path)
                try:
                    check_identity(reader, path)
                finally:
                    reader.close()
            except sqlite3.Error as error:
                raise sqlite_error(path, error) from None
        try:
            if create:  # the driver's store: durable commits
                db = sqlite3.connect(path, isolation_level=None)  # explicit transactions only
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
                claim(db, APPLICATION_ID)
            else:
                db = connect_read_only(path)
            has_trials = db.execute("SELECT count(*) FROM sqlite_master WHERE type='table' "
                                    "AND name='trials'").fetchone()[0]
            if has_trials:
                db.execute("SELECT count(*) FROM trials").fetchone()
        except sqlite3.Error as error:
            raise sqlite_error(path, error) from None
        store = cls(path, db, writer=create)
        if not has_trials:  # an empty file: SQLite's empty database, holding no search
            return store
        version = store.meta().get("schema_version")
        if version not in (None, SCHEMA_VERSION, *LEGACY_SCHEMAS):
            raise TinyFormulaError(f"{path} was written by another tinyformula (schema "
                                   f"{version}); use a new --out")
        return store

    def close(self) -> None:
        """Close; the writer first leaves WAL mode, so the file alone is the whole store and
        reads on read-only storage (it is back in WAL mode when a search opens it again)."""
        if self._writer:
            try:
                self._db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.Error:  # another reader holds it, or the disk is full: WAL stays
                pass
        self._db.close()

    @property
    def legacy(self) -> bool:
        """True for a schema-1 file: no rung or images columns yet."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(trials)")}
        return "rung" not in columns

    def _full_images(self) -> int | None:
        settings = self.meta().get("settings") or {}
        if settings.get("train_size") and settings.get("epochs"):
            return settings["train_size"] * settings["epochs"]
        return None

    # -- what search this is -------------------------------------------------------------------

    def meta(self) -> dict:
        """The search's identity and settings, each checked (a store is read as untrusted
        input: its checks are what a file's schema is to the other files)."""
        if not self._has_table("meta"):
            return {}
        try:
            meta = {key: json.loads(value)
                    for key, value in self._db.execute("SELECT key, value FROM meta")}
        except (ValueError, TypeError, RecursionError, sqlite3.Error) as error:
            raise self.damaged(f"its meta table is not JSON: {type(error).__name__}") from None
        return validate(meta, META, str(self.path), ADVICE)

    def damaged(self, why: str) -> TinyFormulaError:
        return TinyFormulaError(f"{self.path} is damaged ({why}); {ADVICE}")

    def _has_table(self, name: str) -> bool:
        return bool(self._db.execute("SELECT count(*) FROM sqlite_master WHERE type='table' "
                                     "AND name=?", (name,)).fetchone()[0])

    def config(self) -> SearchConfig | None:
        """The search this store holds (None for a new store)."""
        settings = self.meta().get("settings")
        if not settings:
            return None
        try:
            restore_recorded_base(settings.get("yardstick"), str(self.path))  # a spec base
            return SearchConfig.from_dict(settings)
        except TinyFormulaError as error:
            raise self.damaged(f"settings: {error}") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise self.damaged(f"settings: {type(error).__name__}: {error}") from None

    def yardstick(self) -> Yardstick | None:
        """How its trials' c was measured (None for a new store)."""
        settings = self.meta().get("settings")
        if not settings:
            return None
        # Stores before 0.2 kept the yardstick's keys among the settings (FLOPs only then).
        stored = settings.get("yardstick", settings)
        try:
            if not isinstance(stored, dict):
                raise TinyFormulaError("the yardstick is not an object")
            return Yardstick.from_dict(stored)
        except TinyFormulaError as error:
            raise self.damaged(f"yardstick: {error}") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise self.damaged(f"yardstick: {type(error).__name__}: {error}") from None

    def check_same_search(self, config: SearchConfig) -> None:
        """Refuse ``config`` unless it is the search this store holds (any search fits an
        empty store). Reads only: a reader's store can refuse before anything is written."""
        meta = self.meta()
        if not meta:
            return
        # A full-schedule FLOPs search stores neither key (as searches before both did).
        theirs = meta.get("identity", {})
        ours = config.identity()
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        if differ:
            shown = ", ".join(f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here"
                              for k in differ)
            flags = [f"--{k.replace('_', '-')} {_flag_value(theirs[k])}" for k in differ
                     if k in _FLAGS and theirs.get(k) is not None]
            again = (f"give its settings to continue or refit it ({' '.join(flags)}), or "
                     if flags else "")
            raise TinyFormulaError(f"{self.path.parent} holds a different search ({shown}); "
                                   f"{again}choose another --out")

    def merge_plan(self, config: SearchConfig,
                   planned: Sequence[PlannedTrial | tuple[int, int, Configuration]]
                   ) -> list[Trial]:
        """The planned trials as trials: those stored (same candidate, seed and rung) keep
        their id and result, new ones get the next ids. Refuses a store that holds another
        search, or the same candidates planned differently."""
        stored, meta = self.trials(), self.meta()
        if stored or meta:
            self.check_same_search(config)
        by_key = {(t.candidate, t.seed, t.rung): t for t in stored}
        next_id = max((t.id for t in stored), default=-1) + 1
        trials = []
        for candidate, seed, planned_config, rung, images in map(lambda p: PlannedTrial(*p),
                                                                 planned):
            known = by_key.get((candidate, seed, rung))
            if known is None:
                images = config.train_size * config.epochs if images is None else images
                trials.append(Trial(next_id, candidate, seed, planned_config, rung=rung,
                                    images=images))
                next_id += 1
            elif not math.isclose(known.config.c, planned_config.c) \
                    or known.config.w != planned_config.w:
                raise TinyFormulaError(f"{self.path} was planned differently (candidate "
                                       f"{candidate}); choose another --out")
            else:
                trials.append(known)
        return trials

    def write_plan(self, config: SearchConfig, yardstick: Yardstick, trials: list[Trial]) -> None:
        """Record the search and append planned trials not stored yet, in one transaction."""
        # The yardstick under its own key: its latency "device" is not the training device.
        settings = {**config.to_dict(), "num_classes": yardstick.num_classes,
                    "resolution_base": yardstick.resolution_base,
                    "yardstick": yardstick.to_dict(), "replicates": config.replicates}
        rows = [t.to_row() for t in trials]
        with self._transaction():
            if self.legacy:
                migrate_schema1(self._db, _TRIALS_TABLE, self._full_images())
            for key, value in {"schema_version": SCHEMA_VERSION,
                               "identity": config.identity(), "settings": settings}.items():
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 (key, json.dumps(value)))
            self._db.executemany(
                "INSERT OR IGNORE INTO trials (id, candidate, seed, rung, images, r, d, w, c, "
                "resolution, flops, params) VALUES (:id, :candidate, :seed, :rung, :images, :r, "
                ":d, :w, :c, :resolution, :flops, :params)", rows)

    # -- trials --------------------------------------------------------------------------------

    def trials(self) -> list[Trial]:
        """Every stored trial, by id; a schema-1 file's rows are rung 0 on the full budget."""
        if not self._has_table("trials"):
            return []
        selected = legacy_columns(self._full_images()) if self.legacy else list(COLUMNS)
        try:
            rows = self._db.execute(f"SELECT {', '.join(selected)} FROM trials ORDER BY id"
                                    ).fetchall()
        except sqlite3.Error as error:
            raise sqlite_error(self.path, error) from None
        trials = []
        for row in rows:  # every value in its range before anything uses it
            checked = validate(dict(zip(COLUMNS, row)), TRIAL_ROW,
                               f"{self.path} (trial {row[0]!r})", ADVICE)
            trials.append(Trial.from_row(checked))
        return trials

    def record(self, result: TrialResult) -> float:
        """Store one finished trial, committed (and synced) before this returns; returns the
        time it recorded as the trial's end."""
        state = TrialState(result.state)
        if state is TrialState.PENDING:
            raise ValueError(f"trial {result.id}: a result cannot be pending")
        finished_at = time.time()
        with self._transaction():
            self._db.execute(
                "UPDATE trials SET status=?, top1=?, loss=?, seconds=?, images_per_s=?, "
                "message=?, finished_at=? WHERE id=?",
                (state.value, result.top1, result.loss, result.seconds, result.images_per_s,
                 result.message, finished_at, result.id))
        return finished_at

    def _transaction(self):
        return _Transaction(self._db, self.path)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an error; SQLite's own errors (a full disk)
    become one line, and the store keeps every transaction committed before."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self.db, self.path = db, path

    def __enter__(self):
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise sqlite_error(self.path, error) from None

    def __exit__(self, kind, value, traceback):
        try:
            self.db.execute("ROLLBACK" if kind else "COMMIT")
        except sqlite3.Error as error:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise sqlite_error(self.path, error) from None
        if isinstance(value, sqlite3.Error):
            raise sqlite_error(self.path, value) from None
        return False


ADVICE = "move it aside or choose another --out"


def check_identity(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a SQLite file that is not a trials store: another program's (another
    application id, or tables of its own) or one whose tables have another shape. An empty
    database is a store with no search yet; a store written before application ids is
    recognised by its tables and their columns."""
    tables = check_application(db, path, APPLICATION_ID, OWN_TABLES, "trials store")
    if "trials" in tables:
        columns = {row[1] for row in db.execute("PRAGMA table_info(trials)")}
        if not set(legacy_columns(None)) & set(COLUMNS) <= columns:
            missing = sorted(set(legacy_columns(None)) & set(COLUMNS) - columns)
            raise TinyFormulaError(f"{path} has a trials table of another shape (no "
                                   f"{', '.join(missing[:3])}): it is not a tinyformula trials "
                                   f"store, or a damaged one; {ADVICE}")
    if "meta" in tables:
        columns = {row[1] for row in db.execute("PRAGMA table_info(meta)")}
        if not {"key", "value"} <= columns:
            raise TinyFormulaError(f"{path} has a meta table of another shape: it is not a "
                                   f"tinyformula trials store, or a damaged one; {ADVICE}")


def sqlite_error(path: Path, error: sqlite3.Error) -> TinyFormulaError:
    """One line for an SQLite error on the store at ``path``, saying what to do."""
    return databases.sqlite_error(path, error, "trials database",
                                  "every trial finished before is saved")
