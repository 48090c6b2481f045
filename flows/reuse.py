"""Incremental reruns: finished answers are reused per request, keyed by the request's content.

A request's key is the sha256 of its `url` and its canonical `body` (keys sorted): the `custom_id` is not
part of it, so an answer found under one id answers the same request under another. Only `succeeded`
rows are kept; a failed, expired or cancelled line is always submitted again. The store is one SQLite
file in the work directory (`<work_dir>/answers.sqlite`): it survives the process and is shared by the
workers that share the work directory. Rows are kept until pruned (`AnswerStore.prune`) or the file is
deleted; `reuse=False` (`--no-reuse`) neither reads nor writes it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from batch_openai.flows.output import atomic_binary

__all__ = [
    "STORE_NAME",
    "AnswerStore",
    "previous_key",
    "remember",
    "request_key",
    "same_file",
    "snapshot_input",
    "split_reusable",
]

STORE_NAME = "answers.sqlite"
_BLOCK = 5_000  # keys looked up (and rows stored) per SQL statement batch


def request_key(request: dict[str, Any]) -> str:
    """The content key of one batch-input line: its url and canonical body, never its custom_id."""
    canonical = orjson.dumps(request.get("body"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(str(request.get("url", "")).encode() + b"\n" + canonical).hexdigest()


class AnswerStore:
    """Succeeded rows by request key, in one SQLite file (WAL, so readers never block the writer)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers"
            " (key TEXT PRIMARY KEY, row BLOB NOT NULL, stored_at REAL NOT NULL)"
        )

    def close(self) -> None:
        """Close the database file."""
        self._db.close()

    def __enter__(self) -> AnswerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored row of each key that has one."""
        found: dict[str, bytes] = {}
        block: list[str] = []
        for key in keys:
            block.append(key)
            if len(block) >= _BLOCK:
                found.update(self._lookup(block))
                block = []
        if block:
            found.update(self._lookup(block))
        return found

    def _lookup(self, keys: list[str]) -> Iterator[tuple[str, bytes]]:
        marks = ",".join("?" * len(keys))
        yield from self._db.execute(f"SELECT key, row FROM answers WHERE key IN ({marks})", keys)

    def put(self, rows: Iterable[tuple[str, bytes]]) -> int:
        """Store (key, row) pairs, replacing older ones; returns how many were written."""
        now = time.time()
        n = 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for key, row in rows:
                self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", (key, row, now))
                n += 1
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return n

    def prune(self, older_than_days: float) -> int:
        """Forget answers stored more than `older_than_days` ago; returns how many were removed."""
        cutoff = time.time() - older_than_days * 86_400
        return self._db.execute("DELETE FROM answers WHERE stored_at < ?", (cutoff,)).rowcount

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])


def split_reusable(native: Path, store: AnswerStore, reused_rows: Path, remaining: Path) -> tuple[int, int]:
    """Split a native input: lines with a stored answer become rows (under their current custom_id) in
    `reused_rows`; the others go, unchanged, to `remaining`. Returns (reused, remaining) counts."""
    reused = left = 0
    with open(native, "rb") as fh, atomic_binary(reused_rows) as rows, atomic_binary(remaining) as rest:
        block: list[tuple[bytes, dict[str, Any], str]] = []
        for line in fh:
            if not line.strip():
                continue
            request = orjson.loads(line)
            block.append((line if line.endswith(b"\n") else line + b"\n", request, request_key(request)))
            if len(block) >= _BLOCK:
                r, n = _split_block(block, store, rows, rest)
                reused, left, block = reused + r, left + n, []
        r, n = _split_block(block, store, rows, rest)
    return reused + r, left + n


def _split_block(
    block: list[tuple[bytes, dict[str, Any], str]], store: AnswerStore, rows: Any, rest: Any
) -> tuple[int, int]:
    found = store.lookup(key for _, _, key in block)
    reused = 0
    for line, request, key in block:
        stored = found.get(key)
        if stored is None:
            rest.write(line)
            continue
        row = orjson.loads(stored)
        row["custom_id"] = request["custom_id"]
        row["reused"] = True
        rows.write(orjson.dumps(row) + b"\n")
        reused += 1
    return reused, len(block) - reused


def remember(rows_paths: Iterable[str], shard_paths: Iterable[str], store: AnswerStore) -> int:
    """Store the succeeded rows of a run under their requests' keys; returns how many were stored."""
    stored = 0
    for rows_path, shard_path in zip(rows_paths, shard_paths, strict=True):
        keys: dict[str, str] = {}
        with open(shard_path, "rb") as fh:
            for line in fh:
                if line.strip():
                    request = orjson.loads(line)
                    keys[request["custom_id"]] = request_key(request)
        with open(rows_path, "rb") as fh:
            pairs = []
            for line in fh:
                row = orjson.loads(line)
                key = keys.get(row["custom_id"])
                if key is not None and row.get("outcome") == "succeeded":
                    pairs.append((key, line.rstrip(b"\n")))
        stored += store.put(pairs)
    return stored


def snapshot_input(input_path: str | Path, root: Path) -> tuple[Path, str]:
    """Copy the input into the work directory and name the copy by its content; the run works from the
    copy, so editing, replacing or deleting the input while the run waits changes nothing it does.
    Returns (the snapshot, its content key)."""
    import os
    import shutil

    from batch_openai import fingerprint_file

    source = Path(input_path).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".snapshot-{os.getpid()}-{time.monotonic_ns()}.jsonl"
    try:
        with open(source, "rb") as fh, open(tmp, "wb") as out:
            shutil.copyfileobj(fh, out, 1 << 20)
        key = fingerprint_file(tmp)[:16]
        target = root / key / "input.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target, key


def previous_key(input_path: str | Path, key: str, root: Path) -> str | None:
    """The content key of the last run of this input path (None on its first run); records `key` as
    the latest."""
    import os

    name = hashlib.sha256(str(Path(input_path).expanduser().resolve()).encode()).hexdigest()[:16]
    pointer = root / "inputs" / name
    pointer.parent.mkdir(parents=True, exist_ok=True)
    previous = pointer.read_text().strip() if pointer.exists() else None
    tmp = pointer.with_name(f".{name}.{os.getpid()}")
    tmp.write_text(key)
    os.replace(tmp, pointer)
    return previous


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two paths name one file: the same path, a hard link or a symlink to it."""
    import os

    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist yet
        return False
