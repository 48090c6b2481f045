"""Splitting requests into batch input files: one per (endpoint, model), within the service's limits."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from batch_openai._errors import BatchValidationError
from batch_openai._jsonl import encode_line, ensure_dir
from batch_openai._validation import MAX_FILE_BYTES, MAX_REQUESTS

__all__ = ["Shard", "ShardSink", "write_shards"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Shard:
    """One batch input file written to disk: a single endpoint and model, within the size limits."""

    path: Path
    endpoint: str
    model: str | None
    count: int
    size_bytes: int
    fingerprint: str


def _slug(endpoint: str, model: str | None) -> str:
    name = endpoint.removeprefix("/v1/").replace("/", "-")
    return _UNSAFE.sub("_", f"{name}-{model or 'any'}")[:80]


class _ShardWriter:
    """Streams one shard to a temporary file while hashing it, then renames it after its fingerprint."""

    def __init__(self, directory: Path, endpoint: str, model: str | None) -> None:
        self.directory, self.endpoint, self.model = directory, endpoint, model
        self.tmp = directory / f".{_slug(endpoint, model)}-{os.getpid()}-{id(self)}.jsonl.tmp"
        self.file = open(self.tmp, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self.digest = hashlib.sha256()
        self.count = self.size = self.weight = 0
        self._pending: list[bytes] = []

    def write(self, line: bytes, weight: int) -> None:
        self._pending.append(line)
        if len(self._pending) >= 512:  # hash and write in blocks: far fewer calls than per line
            self._drain()
        self.count += 1
        self.size += len(line)
        self.weight += weight

    def _drain(self) -> None:
        block = b"".join(self._pending)
        self._pending.clear()
        self.digest.update(block)
        self.file.write(block)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)

    def close(self) -> Shard:
        self._drain()
        self.file.close()
        fingerprint = self.digest.hexdigest()
        path = self.directory / f"{_slug(self.endpoint, self.model)}-{fingerprint[:16]}.jsonl"
        os.replace(self.tmp, path)  # a reader never sees a half-written shard
        return Shard(path, self.endpoint, self.model, self.count, self.size, fingerprint)


class ShardSink:
    """Takes requests one at a time and writes them as shard files: one open file per (endpoint, model),
    closed when the next request would pass a limit. Memory does not grow with the number of requests.

    Shards come back grouped by (endpoint, model) in first-seen order, each group's in input order, so
    the same requests make the same files whether they arrive all at once or streamed from a file.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_requests: int = MAX_REQUESTS,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        if max_requests < 1:
            raise BatchValidationError(f"max_requests must be >= 1, got {max_requests}")
        if max_bytes < 1:
            raise BatchValidationError(f"max_bytes must be >= 1, got {max_bytes}")
        self.directory = ensure_dir(directory)
        self.max_requests, self.max_bytes = max_requests, max_bytes
        self._open: dict[tuple[str, str | None], _ShardWriter] = {}
        self._groups: dict[tuple[str, str | None], int] = {}
        self._closed: list[tuple[int, int, Shard]] = []

    def add(self, custom_id: str, url: str, model: str | None, body: bytes, weight: int = 1) -> None:
        """Write one request (its compact JSON body) to its group's current shard."""
        line = encode_line(custom_id, url, body)
        # Embeddings batches are also capped at MAX_REQUESTS *inputs*, so count inputs, not lines, there.
        weight = weight if url == "/v1/embeddings" else 1
        _check_fits(custom_id, len(line), weight, self.max_bytes)
        key = (url, model)
        writer = self._open.get(key)
        if writer is not None and (
            writer.count >= self.max_requests
            or writer.size + len(line) > self.max_bytes
            or writer.weight + weight > MAX_REQUESTS
        ):
            self._finish(key)
            writer = None
        if writer is None:
            writer = self._open[key] = _ShardWriter(self.directory, url, model)
            self._groups.setdefault(key, len(self._groups))
        writer.write(line, weight)

    def _finish(self, key: tuple[str, str | None]) -> None:
        writer = self._open.pop(key)
        self._closed.append((self._groups[key], len(self._closed), writer.close()))

    def close(self) -> list[Shard]:
        """Close every open shard; all shards, grouped by (endpoint, model) in first-seen order."""
        for key in list(self._open):
            self._finish(key)
        return [shard for _, _, shard in sorted(self._closed, key=lambda c: (c[0], c[1]))]

    def abort(self) -> None:
        """Drop the shards still being written (a request was refused)."""
        for writer in self._open.values():
            writer.abort()
        self._open.clear()


def write_shards(
    directory: str | os.PathLike[str],
    *,
    ids: Sequence[str],
    urls: Sequence[str],
    models: Sequence[str],
    bodies: Sequence[bytes],
    weights: Sequence[int],
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[Shard]:
    """Write the requests as shard files in `directory`, grouped by (endpoint, model) in first-seen order."""
    sink = ShardSink(directory, max_requests=max_requests, max_bytes=max_bytes)
    try:
        for request in zip(ids, urls, models, bodies, weights, strict=True):
            sink.add(*request)
    except BaseException:
        sink.abort()
        raise
    return sink.close()


def _check_fits(custom_id: str, size: int, weight: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise BatchValidationError(
            f"request (custom_id {custom_id!r}) is {size:,} bytes, over the {max_bytes:,}-byte file "
            "limit on its own; shorten its input",
            custom_id=custom_id,
        )
    if weight > MAX_REQUESTS:
        raise BatchValidationError(
            f"request (custom_id {custom_id!r}) carries {weight:,} embedding inputs, over the "
            f"{MAX_REQUESTS:,} a batch may hold; split its input list",
            custom_id=custom_id,
        )
