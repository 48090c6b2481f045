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

__all__ = ["Shard", "write_shards"]

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
    if max_requests < 1:
        raise BatchValidationError(f"max_requests must be >= 1, got {max_requests}")
    if max_bytes < 1:
        raise BatchValidationError(f"max_bytes must be >= 1, got {max_bytes}")
    out = ensure_dir(directory)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(urls, models, strict=True)):
        groups.setdefault(key, []).append(i)
    shards: list[Shard] = []
    for (url, model), indexes in groups.items():
        # Embeddings batches are also capped at MAX_REQUESTS *inputs*, so count inputs, not lines, there.
        weighted = url == "/v1/embeddings"
        writer: _ShardWriter | None = None
        try:
            for i in indexes:
                line = encode_line(ids[i], url, bodies[i])
                weight = weights[i] if weighted else 1
                _check_fits(ids[i], len(line), weight, max_bytes)
                if writer is not None and (
                    writer.count >= max_requests
                    or writer.size + len(line) > max_bytes
                    or writer.weight + weight > MAX_REQUESTS
                ):
                    shards.append(writer.close())
                    writer = None
                if writer is None:
                    writer = _ShardWriter(out, url, model)
                writer.write(line, weight)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            shards.append(writer.close())
    return shards


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
