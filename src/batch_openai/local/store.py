"""Files and batches, kept in memory and mirrored to the state directory.

Layout of the state directory:
    files/<file_id>.json   the file object        files/<file_id>.data    its bytes
    batches/<batch_id>.json  the batch object plus the server's private fields
    work/<batch_id>.out / .err  output and error lines written so far (in-flight batches)
A restart reloads every object; in-flight batches resume from their `work/` files.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


def new_id(prefix: str) -> str:
    """A fresh id shaped like OpenAI's (`file-…`, `batch_…`, `batch_req_…`)."""
    return prefix + secrets.token_hex(12)


def now() -> int:
    """Unix time in whole seconds, as every timestamp in the API."""
    return int(time.time())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


@dataclass
class BatchRecord:
    """A batch: its public object plus what the server needs to carry on after a restart."""

    obj: dict[str, Any]
    seq: int
    model: str | None = None
    enqueued_tokens: int = 0
    cancel_requested: bool = False
    expire_requested: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The batch id."""
        return str(self.obj["id"])

    @property
    def status(self) -> str:
        """The batch status."""
        return str(self.obj["status"])

    def to_json(self) -> bytes:
        """Serialise for the state directory."""
        return orjson.dumps(
            {
                "batch": self.obj,
                "seq": self.seq,
                "model": self.model,
                "enqueued_tokens": self.enqueued_tokens,
                "cancel_requested": self.cancel_requested,
                "expire_requested": self.expire_requested,
                "extra": self.extra,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> BatchRecord:
        """Load from the state directory."""
        data = orjson.loads(raw)
        return cls(
            obj=data["batch"],
            seq=int(data["seq"]),
            model=data.get("model"),
            enqueued_tokens=int(data.get("enqueued_tokens", 0)),
            cancel_requested=bool(data.get("cancel_requested")),
            expire_requested=bool(data.get("expire_requested")),
            extra=data.get("extra") or {},
        )


class Store:
    """Thread-safe registry of files and batches backed by a state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir)
        self.files_dir = self.root / "files"
        self.batches_dir = self.root / "batches"
        self.work_dir = self.root / "work"
        for d in (self.files_dir, self.batches_dir, self.work_dir):
            d.mkdir(parents=True, exist_ok=True)
        # One lock guards every object: the HTTP thread reads while the engine thread writes.
        self.lock = threading.RLock()
        self.files: dict[str, dict[str, Any]] = {}
        self._file_seq: dict[str, int] = {}
        self.batches: dict[str, BatchRecord] = {}
        self._seq = 0
        self._load()

    # -- loading -------------------------------------------------------------------------------
    def _load(self) -> None:
        for meta in self.files_dir.glob("*.json"):
            try:
                obj = orjson.loads(meta.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue  # a torn write from a crash: the object never existed
            if self.file_path(obj["id"]).exists():
                self.files[obj["id"]] = obj
                self._file_seq[obj["id"]] = int(obj.pop("_seq", 0))
        for meta in self.batches_dir.glob("*.json"):
            try:
                rec = BatchRecord.from_json(meta.read_bytes())
            except (OSError, orjson.JSONDecodeError, KeyError):
                continue
            self.batches[rec.id] = rec
        seqs = [r.seq for r in self.batches.values()] + list(self._file_seq.values())
        self._seq = max(seqs, default=0)

    def next_seq(self) -> int:
        """A counter that orders objects created within the same second."""
        with self.lock:
            self._seq += 1
            return self._seq

    # -- files ---------------------------------------------------------------------------------
    def file_path(self, file_id: str) -> Path:
        """Where a file's bytes live."""
        return self.files_dir / f"{file_id}.data"

    def add_file(self, obj: dict[str, Any]) -> None:
        """Register a file whose bytes are already at `file_path(obj['id'])`."""
        with self.lock:
            seq = self.next_seq()
            self.files[obj["id"]] = obj
            self._file_seq[obj["id"]] = seq
            _write_atomic(self.files_dir / f"{obj['id']}.json", orjson.dumps({**obj, "_seq": seq}))

    def get_file(self, file_id: str) -> dict[str, Any] | None:
        """A file object, or None."""
        with self.lock:
            obj = self.files.get(file_id)
            return dict(obj) if obj is not None else None

    def delete_file(self, file_id: str) -> bool:
        """Forget a file and remove its bytes; False if unknown."""
        with self.lock:
            if self.files.pop(file_id, None) is None:
                return False
            self._file_seq.pop(file_id, None)
            for p in (self.files_dir / f"{file_id}.json", self.file_path(file_id)):
                p.unlink(missing_ok=True)
            return True

    def list_files(self) -> list[dict[str, Any]]:
        """Every file, newest first."""
        with self.lock:
            ids = sorted(
                self.files, key=lambda i: (self.files[i]["created_at"], self._file_seq[i]), reverse=True
            )
            return [dict(self.files[i]) for i in ids]

    # -- batches -------------------------------------------------------------------------------
    def add_batch(self, rec: BatchRecord) -> None:
        """Register and persist a new batch."""
        with self.lock:
            self.batches[rec.id] = rec
            self.save_batch(rec)

    def save_batch(self, rec: BatchRecord) -> None:
        """Persist a batch (call after each status change)."""
        with self.lock:
            _write_atomic(self.batches_dir / f"{rec.id}.json", rec.to_json())

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        """The live record (mutate only under `lock`)."""
        return self.batches.get(batch_id)

    def batch_json(self, batch_id: str) -> bytes | None:
        """A consistent snapshot of a batch object as JSON."""
        with self.lock:
            rec = self.batches.get(batch_id)
            return orjson.dumps(rec.obj) if rec is not None else None

    def list_batches(self) -> list[BatchRecord]:
        """Every batch, newest first."""
        with self.lock:
            return sorted(self.batches.values(), key=lambda r: (r.obj["created_at"], r.seq), reverse=True)

    def work_paths(self, batch_id: str) -> tuple[Path, Path]:
        """The in-progress output and error files of a batch."""
        return self.work_dir / f"{batch_id}.out", self.work_dir / f"{batch_id}.err"

    def publish_output(self, work: Path, filename: str, expires_after: dict[str, Any] | None) -> str | None:
        """Turn a work file into a `batch_output` file; None (and no file) when it holds no line."""
        if not work.exists() or work.stat().st_size == 0:
            work.unlink(missing_ok=True)
            return None
        file_id = new_id("file-")
        path = self.file_path(file_id)
        os.replace(work, path)
        created = now()
        self.add_file(
            {
                "id": file_id,
                "object": "file",
                "bytes": path.stat().st_size,
                "created_at": created,
                "filename": filename,
                "purpose": "batch_output",
                "status": "processed",
                "expires_at": created + int(expires_after["seconds"]) if expires_after else None,
                "status_details": None,
            }
        )
        return file_id
