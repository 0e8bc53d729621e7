"""Older ``trials.sqlite`` schemas, read and rebuilt.

Schema 1 (tinyformula 0.1) had no rung and no images column: one row per (candidate, seed). It
is read as rung 0 of a full schedule, every row trained on the search's full budget
(:func:`legacy_columns`), and rebuilt as the current schema in the transaction that first
writes a plan into it (:func:`migrate_schema1`).
"""

from __future__ import annotations

import sqlite3

from .trials import COLUMNS

LEGACY_SCHEMAS = (1,)


def legacy_columns(full_images: int | None) -> list[str]:
    """What to SELECT from a schema-1 table to read rows with today's :data:`COLUMNS`."""
    legacy = {"rung": "0", "images": str(full_images or "NULL")}
    return [legacy.get(name, name) for name in COLUMNS]


def migrate_schema1(db: sqlite3.Connection, trials_table: str, full_images: int | None) -> None:
    """Rebuild a schema-1 ``trials`` table as ``trials_table`` (its CREATE statement), inside
    the caller's transaction: every row becomes rung 0, trained on the search's full budget."""
    old = [name for name in COLUMNS if name not in ("rung", "images")]
    db.execute("ALTER TABLE trials RENAME TO trials_schema1")
    db.execute(trials_table)
    db.execute(f"INSERT INTO trials ({', '.join(COLUMNS)}) SELECT "
               f"{', '.join(old[:3])}, 0, ?, {', '.join(old[3:])} FROM trials_schema1",
               (full_images,))
    db.execute("DROP TABLE trials_schema1")
