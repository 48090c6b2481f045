"""JSONL on disk: streamed line reading, fingerprints, and request-line encoding (orjson, UTF-8 unescaped)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import orjson

__all__ = ["encode_line", "fingerprint_file", "iter_lines"]

_CHUNK = 1 << 20


def fingerprint_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, line bytes without the newline) for every non-blank line."""
    with open(path, "rb", buffering=_CHUNK) as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield number, line


_PREFIX_CACHE: dict[str, bytes] = {}


def encode_line(custom_id: str, url: str, body: bytes) -> bytes:
    """One batch-input line (with its newline) from an already-encoded body."""
    tail = _PREFIX_CACHE.get(url)
    if tail is None:
        tail = _PREFIX_CACHE[url] = b',"method":"POST","url":' + orjson.dumps(url) + b',"body":'
    return b'{"custom_id":' + orjson.dumps(custom_id) + tail + body + b"}\n"


def ensure_dir(directory: str | os.PathLike[str]) -> Path:
    """Create `directory` (and parents) if needed and return it as a Path."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return path
