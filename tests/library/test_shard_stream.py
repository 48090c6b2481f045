"""`BatchRequestBuilder.shard_jsonl`: the same shards and errors as `from_jsonl().write_shards()`,
streamed, so a million-request file never sits in memory."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from batch_openai import BatchRequestBuilder, BatchValidationError


def _requests(path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        model = "gpt-4o-mini" if i % 3 else "gpt-4o"
        body = {"model": model, "messages": [{"role": "user", "content": f"line {i} " + "x" * (i % 50)}]}
        lines.append({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body})
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    return path


def _shape(shards: list) -> list[tuple]:
    return [(s.endpoint, s.model, s.count, s.size_bytes, s.fingerprint, s.path.read_bytes()) for s in shards]


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_streamed_shards_equal_the_builders(tmp_path: Path, chunk: int) -> None:
    src = _requests(tmp_path / "in.jsonl", 95)
    whole = BatchRequestBuilder.from_jsonl(src).write_shards(tmp_path / "a", max_requests=20, max_bytes=4000)
    streamed = BatchRequestBuilder.shard_jsonl(
        src, tmp_path / "b", max_requests=20, max_bytes=4000, chunk=chunk
    )
    assert _shape(streamed) == _shape(whole)
    assert len(whole) > 4  # split by model, count and size


def test_a_duplicate_across_chunks_is_refused_and_leaves_no_shard(tmp_path: Path) -> None:
    src = _requests(tmp_path / "in.jsonl", 30)
    with open(src, "ab") as fh:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "again"}]}
        fh.write(
            orjson.dumps({"custom_id": "r3", "method": "POST", "url": "/v1/chat/completions", "body": body})
        )
    with pytest.raises(BatchValidationError) as whole:
        BatchRequestBuilder.from_jsonl(src)
    with pytest.raises(BatchValidationError) as streamed:
        BatchRequestBuilder.shard_jsonl(src, tmp_path / "out", chunk=4)
    assert str(streamed.value) == str(whole.value) and "duplicate custom_id 'r3'" in str(whole.value)
    assert not list((tmp_path / "out").glob("*"))  # nothing half-written stays behind


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(BatchValidationError, match="holds no requests"):
        BatchRequestBuilder.shard_jsonl(tmp_path / "empty.jsonl", tmp_path / "out")
