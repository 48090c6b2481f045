"""The library with URLs: `from_jsonl` / `check_jsonl` / `shard_jsonl` stream an S3 object, `save` writes
one whole object or none, and a missing back end or scheme is one line naming the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import fsspec
import pytest

from batch_openai import BatchRequestBuilder, BatchResult, BatchStorageError, BatchValidationError, storage


def _put(url: str, lines: list[dict]) -> None:
    with fsspec.open(url, "wb") as fh:
        for line in lines:
            fh.write(json.dumps(line).encode() + b"\n")


def _request(i: int) -> dict:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]}
    return {"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}


def test_from_jsonl_and_streamed_checks_read_an_s3_object(s3: str, tmp_path):
    url = f"{s3}/in/requests.jsonl"
    _put(url, [_request(i) for i in range(25)])
    builder = BatchRequestBuilder.from_jsonl(url)
    assert builder.custom_ids == [f"c{i}" for i in range(25)]
    assert BatchRequestBuilder.check_jsonl(url, chunk=10) == 25
    shards = BatchRequestBuilder.shard_jsonl(url, tmp_path / "shards", max_requests=10)
    assert [s.count for s in shards] == [10, 10, 5]
    local = tmp_path / "same.jsonl"
    local.write_bytes(fsspec.open(url, "rb").open().read())
    assert [
        s.fingerprint for s in BatchRequestBuilder.shard_jsonl(local, tmp_path / "s2", max_requests=10)
    ] == [s.fingerprint for s in shards]


def test_a_bad_line_in_an_object_is_named_before_anything_is_uploaded(s3: str):
    url = f"{s3}/in/bad.jsonl"
    lines = [_request(0), {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions"}]
    _put(url, lines)
    with pytest.raises(BatchValidationError, match=r"bad.jsonl line 2: missing 'body'"):
        BatchRequestBuilder.from_jsonl(url)


def test_missing_object_is_a_validation_error_naming_the_url(s3: str):
    with pytest.raises(BatchValidationError, match="does not exist"):
        BatchRequestBuilder.from_jsonl(f"{s3}/nope.jsonl")


def test_result_save_to_s3_is_whole_or_absent(s3: str, tmp_path):
    out = tmp_path / "out.jsonl"
    answer = {
        "id": "r",
        "custom_id": "c0",
        "response": {"status_code": 200, "body": {"choices": []}},
        "error": None,
    }
    out.write_text(json.dumps(answer) + "\n")
    result = BatchResult.from_files(out, None, expected_ids=["c0", "c1"])
    url = f"{s3}/results/rows.jsonl"
    assert result.save(url) == url
    rows = [json.loads(line) for line in fsspec.open(url, "rb").open().read().splitlines()]
    assert [r["custom_id"] for r in rows] == ["c0", "c1"]
    assert [r["outcome"] for r in rows] == ["succeeded", "missing"]

    class Boom(Exception):
        pass

    half = f"{s3}/results/half.jsonl"
    with pytest.raises(Boom), storage.atomic_write(half) as fh:
        fh.write(b'{"custom_id": "c0"}\n')
        raise Boom
    assert not storage.is_file(half)  # a failed write leaves no object behind


def test_unknown_scheme_is_one_line_naming_the_choices():
    with pytest.raises(BatchStorageError, match=r"unknown storage scheme 'nosuch://'.*s3://, gs://, az://"):
        storage.is_file("nosuch://bucket/x.jsonl")


def test_missing_extra_names_the_extra_to_install():
    """With s3fs not importable (as on an install without the extra), the message names the extra."""
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from batch_openai import BatchRequestBuilder\n"
        "try:\n"
        "    BatchRequestBuilder.from_jsonl('s3://bucket/requests.jsonl')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "BatchStorageError" in out and "pip install 'batch-openai[s3]'" in out, out


def test_use_storage_options_reaches_fsspec_without_environment(moto, monkeypatch, tmp_path):
    """Credentials given in code (as a Prefect block hands them over) work with no AWS_* variables."""
    import os

    bucket = moto.new_bucket()
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(fsspec.config, "conf", {})
    from moto_harness import CREDENTIALS

    storage.use_storage_options(
        "s3",
        key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": moto.endpoint},
    )
    local = tmp_path / "x.bin"
    local.write_bytes(b"abc")
    storage.publish(local, f"s3://{bucket}/x.bin")
    assert storage.fetch(f"s3://{bucket}/x.bin", tmp_path / "back.bin").read_bytes() == b"abc"
