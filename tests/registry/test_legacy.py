"""A directory that held the seed's `registry.db` keeps its records visible, and they move to Prefect."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_openai import BatchRegistry
from batch_openai.records import read_record

# The seed's table, exactly as batch-openai 0.4.0 created it.
SEED_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id      TEXT PRIMARY KEY,
    input_file_id TEXT NOT NULL,
    description   TEXT,
    status        TEXT NOT NULL,
    created_at    TEXT NOT NULL
)
"""


@pytest.fixture
def seed_file(ephemeral_home: Path) -> Iterator[Path]:
    db = ephemeral_home / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute(SEED_SCHEMA)
        conn.executemany(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?)",
            [
                ("batch_seed_old", "file-a", "from 0.4", "validating", "2025-01-01T10:00:00+00:00"),
                ("batch_seed_new", "file-b", None, "completed", "2025-02-01T10:00:00+00:00"),
            ],
        )
    yield db
    db.unlink()


def test_seed_records_show_through_and_move_to_prefect_when_touched(
    home_registry: BatchRegistry, seed_file: Path, ephemeral_home: Path
) -> None:
    home_registry.track_batch(
        {"id": "batch_now", "input_file_id": "f", "status": "in_progress", "created_at": 1_800_000_000}
    )
    assert [r.batch_id for r in home_registry.list()] == ["batch_now", "batch_seed_new", "batch_seed_old"]
    assert [r.batch_id for r in home_registry.list(status="completed")] == ["batch_seed_new"]
    old = home_registry.get_record("batch_seed_old")
    assert (old.input_file_id, old.description, old.status) == ("file-a", "from 0.4", "validating")

    home_registry.update_status("batch_seed_old", "completed")  # now a Prefect record
    moved = read_record(ephemeral_home / "prefect.db", "batch_seed_old")
    assert moved is not None and moved.status == "completed" and moved.description == "from 0.4"
    assert [r.batch_id for r in home_registry.list(status="completed")] == [
        "batch_seed_new",
        "batch_seed_old",
    ]

    home_registry.delete("batch_seed_old")  # gone from both places
    home_registry.delete("batch_seed_new")
    assert [r.batch_id for r in home_registry.list()] == ["batch_now"]
    with sqlite3.connect(seed_file) as conn:
        assert conn.execute("SELECT COUNT(*) FROM batches").fetchone() == (0,)
