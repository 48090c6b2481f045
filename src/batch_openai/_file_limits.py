"""The service's per-file limits, checked on an input file before `submit_file` uploads it.

A file over 50,000 requests (50,000 inputs for embeddings) or 200 MB is accepted by the upload and then
fails the batch in validation; checking first turns that into a `BatchValidationError` that costs nothing.
Everything streams: the file is never held in memory.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from batch_openai._errors import BatchValidationError
from batch_openai._jsonl import iter_lines
from batch_openai._validation import MAX_FILE_BYTES, MAX_REQUESTS, embedding_weight

__all__ = ["check_file_limits"]

_CHUNK = 1 << 20
_EMBEDDINGS = "/v1/embeddings"


def _fix(path: Path) -> str:
    return (
        "split it into shards first: "
        f"BatchRequestBuilder.from_jsonl({str(path)!r}).write_shards(directory), then submit each shard "
        "(or call .submit(client) on the builder, which shards for you)"
    )


def _count_lines(path: Path) -> int:
    """Non-blank lines, streamed; counting newlines is exact unless blank lines push it over the limit."""
    newlines = 0
    last = b"\n"
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    count = newlines + (last != b"\n")
    if count > MAX_REQUESTS:  # near the limit blank lines matter: count the real ones
        count = sum(1 for _ in iter_lines(path))
    return count


def _count_inputs(path: Path) -> int:
    """Embedding inputs of every request (a list `input` counts each element), streamed."""
    total = 0
    for _, raw in iter_lines(path):
        try:
            body = orjson.loads(raw).get("body")
        except (orjson.JSONDecodeError, AttributeError):
            total += 1  # not ours to judge here: the service reports bad lines per request
            continue
        total += embedding_weight(body) if isinstance(body, dict) else 1
    return total


def check_file_limits(path: Path, endpoint: str) -> None:
    """Raise `BatchValidationError` if `path` is over the service's size, request or input limit."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise BatchValidationError(
            f"input file {path.name!r} is {size:,} bytes; the service takes at most {MAX_FILE_BYTES:,} "
            f"bytes (200 MB) per batch file; {_fix(path)}"
        )
    count = _count_lines(path)
    if count > MAX_REQUESTS:
        raise BatchValidationError(
            f"input file {path.name!r} holds {count:,} requests; the service takes at most "
            f"{MAX_REQUESTS:,} per batch; {_fix(path)}"
        )
    if endpoint == _EMBEDDINGS:
        inputs = _count_inputs(path)
        if inputs > MAX_REQUESTS:
            raise BatchValidationError(
                f"input file {path.name!r} holds {inputs:,} embedding inputs; the service takes at most "
                f"{MAX_REQUESTS:,} inputs per embeddings batch; {_fix(path)}"
            )
