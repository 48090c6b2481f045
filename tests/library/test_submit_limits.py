"""`submit_file` refuses a file over the service's per-file limits before anything is uploaded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from batch_openai import BatchValidationError, async_submit_file, submit_file
from batch_openai.local import LocalBatchServer


def _line(custom_id: str, body: dict[str, Any], url: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body}) + b"\n"


def _uploads(server: LocalBatchServer) -> int:
    return server.stats().get("POST /v1/files", 0)


def test_embeddings_file_over_50000_inputs_is_refused_naming_the_fix(
    server: LocalBatchServer, client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "emb.jsonl"
    inputs = [f"w{i}" for i in range(25_001)]
    body = {"model": "text-embedding-3-small", "input": inputs}
    path.write_bytes(_line("a", body, "/v1/embeddings") + _line("b", body, "/v1/embeddings"))
    before = _uploads(server)
    with pytest.raises(BatchValidationError) as caught:
        submit_file(client, path, endpoint="/v1/embeddings")
    text = str(caught.value)
    assert "50,002 embedding inputs" in text and "50,000" in text and "write_shards" in text
    assert _uploads(server) == before


def test_async_submit_file_refuses_more_than_50000_requests(
    server: LocalBatchServer, async_client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "big.jsonl"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    line = _line("ID", body, "/v1/chat/completions")
    with open(path, "wb") as f:
        f.write(b"".join(line.replace(b"ID", b"r%d" % i) for i in range(50_001)))
        f.write(b"\n\n")  # blank lines are not requests
    before = _uploads(server)
    with pytest.raises(BatchValidationError, match="50,001 requests"):
        asyncio.run(async_submit_file(async_client, path, endpoint="/v1/chat/completions"))
    assert _uploads(server) == before


def test_exactly_50000_requests_with_blank_lines_is_not_refused(tmp_path: Path) -> None:
    from batch_openai._file_limits import check_file_limits

    path = tmp_path / "edge.jsonl"
    path.write_bytes(b'{"custom_id":"x"}\n\n' * 50_000)  # 100,000 newlines, 50,000 requests
    check_file_limits(path, "/v1/chat/completions")
