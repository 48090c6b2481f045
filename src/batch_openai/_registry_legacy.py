"""The seed's own registry file (`<path>/registry.db`), still readable where scripts pass its directory.

Before Prefect held the records, `BatchRegistry(path)` kept a SQLite table `batches` in
`<path>/registry.db`. Such a directory now is the registry's Prefect home, and its old rows stay
visible: `list()` and `get()` show them (read-only) until the batch is tracked or updated again, which
writes it to Prefect; `delete()` removes it from both.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from batch_openai._registry_record import BatchRecord

__all__ = ["LEGACY_FILE", "delete_legacy", "read_legacy"]

LEGACY_FILE = "registry.db"


def _rows(home: Path, where: str = "", args: tuple[str, ...] = ()) -> list[sqlite3.Row]:
    db = home / LEGACY_FILE
    if not db.is_file():
        return []
    conn = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        sql = "SELECT batch_id, input_file_id, description, status, created_at FROM batches " + where
        return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []  # not the seed's file: nothing to show
    finally:
        conn.close()


def _record(row: sqlite3.Row) -> BatchRecord:
    created = datetime.fromisoformat(row["created_at"])
    return BatchRecord(
        batch_id=row["batch_id"],
        input_file_id=row["input_file_id"] or "",
        description=row["description"],
        status=row["status"],
        created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
    )


def read_legacy(home: Path, batch_id: str | None = None) -> list[BatchRecord]:
    """The seed's records in `home` (all, or the one with `batch_id`)."""
    rows = _rows(home, "WHERE batch_id = ?", (batch_id,)) if batch_id is not None else _rows(home)
    return [_record(r) for r in rows]


def delete_legacy(home: Path, batch_id: str) -> None:
    """Remove a batch from the seed's file, if it is there."""
    db = home / LEGACY_FILE
    if not db.is_file():
        return
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            conn.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
    except sqlite3.Error:
        return
