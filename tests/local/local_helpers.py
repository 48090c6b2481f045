"""Helpers and fixtures of the local server tests: the real openai client over real HTTP."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from batch_openai.local import LocalBatchServer

TERMINAL = ("completed", "failed", "expired", "cancelled")


def chat_line(i: int | str, content: str | None = None, **body: Any) -> dict[str, Any]:
    """One chat-completions batch line."""
    payload = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": content or f"Say something {i}"}],
    }
    payload.update(body)
    return {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions", "body": payload}


def jsonl(lines: list[Any]) -> bytes:
    """Serialise lines (dicts, or raw bytes/str kept as they are)."""
    out = []
    for line in lines:
        if isinstance(line, bytes):
            out.append(line)
        elif isinstance(line, str):
            out.append(line.encode())
        else:
            out.append(orjson.dumps(line))
    return b"\n".join(out) + b"\n"


def upload(client: Any, lines: list[Any] | bytes, name: str = "input.jsonl") -> Any:
    """Upload a batch input file."""
    data = lines if isinstance(lines, bytes) else jsonl(lines)
    return client.files.create(file=(name, io.BytesIO(data)), purpose="batch")


def submit(client: Any, lines: list[Any] | bytes, endpoint: str = "/v1/chat/completions", **kw: Any) -> Any:
    """Upload and create a batch."""
    f = upload(client, lines)
    return client.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h", **kw)


def wait(client: Any, batch_id: str, until: tuple[str, ...] = TERMINAL, timeout: float = 20.0) -> Any:
    """Poll until the batch reaches one of `until`."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in until:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} stuck in {batch.status}")
        time.sleep(0.02)


def read_lines(client: Any, file_id: str | None) -> list[dict[str, Any]]:
    """The JSON lines of an output or error file ([] for None)."""
    if file_id is None:
        return []
    return [orjson.loads(x) for x in client.files.content(file_id).content.splitlines() if x.strip()]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalBatchServer]:
    """A fast server shared by a module's tests (faults are cleared after each test)."""
    with LocalBatchServer(step_seconds=0.0) as srv:
        yield srv


@pytest.fixture
def client(server: LocalBatchServer) -> Iterator[Any]:
    """An openai client without retries, so each fault is seen."""
    c = server.client(max_retries=0)
    yield c
    server.clear_faults()
    c.close()
