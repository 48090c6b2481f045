"""The fast read path: registry records straight from a local Prefect SQLite database, read-only.

Without `PREFECT_API_URL`, reading through Prefect's API means starting its ephemeral server
(7–17 s, a subprocess and migrations). The records are rows of Prefect's own `variable` table, so
read-only commands read that table directly: opened with `mode=ro` (SQLite's WAL lets this reader run
beside Prefect's writers without blocking them), selected by the registry's name prefix through the
table's unique index on `name`. The shape of the table is checked first; if Prefect ever changes it,
the reader raises `UnreadableDatabase` and the caller goes through the API instead.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

import orjson

from batch_openai._registry_record import NAME_PREFIX, BatchRecord, decode_record, variable_name

__all__ = ["UnreadableDatabase", "read_all", "read_one"]

# Every registry name starts with "batch-openai-"; "." sorts right after "-", which bounds the range.
_RANGE_END = NAME_PREFIX[:-1] + "."


class UnreadableDatabase(Exception):
    """The database is not one this reader understands: go through Prefect's API instead."""


def _connect(db: Path) -> sqlite3.Connection:
    """A read-only connection to a database whose `variable` table has the expected columns."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise UnreadableDatabase(str(exc)) from exc
    try:
        conn.execute("SELECT name, value, tags, created FROM variable LIMIT 0")
    except sqlite3.Error as exc:
        conn.close()
        raise UnreadableDatabase(str(exc)) from exc
    return conn


def _decode(raw: str | bytes | None) -> BatchRecord | None:
    if raw is None:
        return None
    value = orjson.loads(raw)
    if not isinstance(value, dict) or "batch_id" not in value:
        return None
    return decode_record(value)


def read_all(db: Path, *, status: str | None = None) -> list[BatchRecord]:
    """Every record in the database, newest first (raises `UnreadableDatabase`)."""
    if not db.is_file():
        return []  # nothing was ever written there: Prefect has not created its database yet
    conn = _connect(db)
    try:
        rows = conn.execute(
            "SELECT value FROM variable WHERE name >= ? AND name < ?", (NAME_PREFIX, _RANGE_END)
        ).fetchall()
    finally:
        conn.close()
    records = [r for r in (_decode(row[0]) for row in rows) if r is not None]
    if status is not None:
        records = [r for r in records if r.status == status]
    records.sort(key=lambda r: (r.created_at, r.batch_id), reverse=True)
    return records


def read_one(db: Path, batch_id: str) -> BatchRecord | None:
    """One record, or None if it is not there (raises `UnreadableDatabase`)."""
    if not db.is_file():
        return None
    conn = _connect(db)
    try:
        row = conn.execute("SELECT value FROM variable WHERE name = ?", (variable_name(batch_id),)).fetchone()
    finally:
        conn.close()
    return None if row is None else _decode(row[0])
