"""Incremental reruns: finished answers are reused per request, keyed by the request's content.

A request's key is the sha256 of its `url` and its canonical `body` (keys sorted): the `custom_id` is not
part of it, so an answer found under one id answers the same request under another. Only `succeeded`
rows are kept; a failed, expired or cancelled line is always submitted again. The store is one SQLite
file in the work directory (`<work_dir>/answers.sqlite`): it survives the process and is shared by the
workers that share the work directory. A work directory on object storage keeps immutable segments
instead (`<work_dir>/answers/<run>.sqlite`), merged into each machine's local copy before a lookup.
Rows are kept until pruned (`AnswerStore.prune`) or the file is deleted; `reuse=False` (`--no-reuse`)
neither reads nor writes it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from batch_openai.storage import atomic_binary

__all__ = [
    "STORE_NAME",
    "AnswerStore",
    "pointer_path",
    "previous_key",
    "publish_segment",
    "remember",
    "request_key",
    "same_file",
    "snapshot_input",
    "split_reusable",
    "sync_segments",
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
        self._db.execute("CREATE TABLE IF NOT EXISTS merged_segments (name TEXT PRIMARY KEY)")

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

    def merge(self, segment: str | Path) -> None:
        """Copy every answer of a segment file (another store) into this one and remember its name."""
        self._db.execute("ATTACH DATABASE ? AS segment", (str(segment),))
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO answers SELECT key, row, stored_at FROM segment.answers")
            self._db.execute("INSERT OR IGNORE INTO merged_segments VALUES (?)", (Path(segment).name,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._db.execute("DETACH DATABASE segment")

    def seal(self) -> None:
        """Fold the write-ahead log into the file, so the file alone holds every answer (to upload it)."""
        self._db.execute("PRAGMA journal_mode=DELETE")

    def merged_segments(self) -> set[str]:
        """Names of the segments already merged into this store."""
        return {row[0] for row in self._db.execute("SELECT name FROM merged_segments")}

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
    """Copy the input (a path or URL, streamed) into the work directory and name the copy by its
    content; the run works from the copy, so editing, replacing or deleting the input while the run
    waits changes nothing it does. Returns (the snapshot, its content key)."""
    import os
    import shutil

    from batch_openai import fingerprint_file
    from batch_openai.storage import open_read

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".snapshot-{os.getpid()}-{time.monotonic_ns()}.jsonl"
    try:
        with open_read(input_path) as fh, open(tmp, "wb") as out:
            shutil.copyfileobj(fh, out, 1 << 20)
        key = fingerprint_file(tmp)[:16]
        target = root / key / "input.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target, key


def pointer_path(input_path: str | Path, root: Path) -> Path:
    """The file that records the content key of the last run of an input path or URL."""
    from batch_openai.storage import is_url, local_path

    where = str(input_path) if is_url(input_path) else str(local_path(input_path).resolve())
    return root / "inputs" / hashlib.sha256(where.encode()).hexdigest()[:16]


def previous_key(input_path: str | Path, key: str, root: Path) -> str | None:
    """The content key of the last run of this input path (None on its first run); records `key` as
    the latest."""
    import os

    pointer = pointer_path(input_path, root)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    previous = pointer.read_text().strip() if pointer.exists() else None
    tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}")
    tmp.write_text(key)
    os.replace(tmp, pointer)
    return previous


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two paths name one file: the same path or URL, a hard link or a symlink to it."""
    import os

    from batch_openai.storage import is_url, local_path

    if is_url(a) or is_url(b):
        return str(a).rstrip("/") == str(b).rstrip("/")
    pa, pb = local_path(a), local_path(b)
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist yet
        return False


# ---------------------------------------------------------------- a store on object storage
# SQLite cannot live in a bucket, and machines sharing one cannot lock a file. So a URL work dir keeps
# the answers as immutable segments (`<work_dir>/answers/<id>.sqlite`, one per finished run); each
# machine merges the segments it has not seen into its local store before looking answers up.
SEGMENTS = "answers"


def sync_segments(workspace: Any, store: AnswerStore) -> int:
    """Merge into `store` every segment of the work dir's URL it has not merged yet; returns how many."""
    seen = store.merged_segments()
    merged = 0
    for name in workspace.remote_names(workspace.local / SEGMENTS):
        segment = workspace.local / SEGMENTS / name
        if name.endswith(".sqlite") and name not in seen and workspace.pull([segment]):
            store.merge(segment)
            merged += 1
    return merged


def publish_segment(
    workspace: Any, rows_paths: list[str], shard_paths: list[str], store: AnswerStore, name: str
) -> int:
    """Store a run's succeeded rows in a new segment, publish it to the work dir's URL, and merge it into
    the local `store`; returns how many rows were stored."""
    segment = workspace.local / SEGMENTS / f"{name}.sqlite"
    segment.unlink(missing_ok=True)
    with AnswerStore(segment) as part:
        stored = remember(rows_paths, shard_paths, part)
        part.seal()
    workspace.push([segment])
    store.merge(segment)
    return stored
