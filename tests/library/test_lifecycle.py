"""Submit → wait → result through the real `openai` client and the local Batch API server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from library_helpers import FAST, chat_builder

from batch_openai import (
    BatchJob,
    BatchJobError,
    BatchNotFoundError,
    BatchRequestBuilder,
    BatchResult,
    BatchTimeoutError,
    BatchValidationError,
    Outcome,
    fingerprint_file,
    submit_file,
)
from batch_openai._job import aggregate_status, files_settled
from batch_openai.local import LocalBatchServer


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LocalBatchServer]:
    """A server whose batches take a few seconds, so they can be cancelled, expired or timed out mid-way."""
    with LocalBatchServer(step_seconds=1.5, seed=1) as srv:
        yield srv


def test_submit_wait_result(client: Any, server: LocalBatchServer) -> None:
    b = chat_builder(6, prefix="life")
    seen: list[str] = []
    # The session server runs with step 0 and, under load, may move a batch on before answering the
    # create. Batches created with a 1 s step sit in `validating` for that second (the engine times the
    # step when it starts waiting), so the create's answer always says `validating`; then back to 0.
    server.set_step_seconds(1.0)
    try:
        job = b.submit(client, description="life test", metadata={"team": "evals"})
        assert job.description == "life test" and job.status == "validating" and len(job.batch_ids) == 1
        assert client.batches.retrieve(job.batch_id).status == "validating"
    finally:
        server.set_step_seconds(0.0)
    assert job.input_file_id.startswith("file")
    result = job.wait(poll_interval=0.02, on_progress=lambda batch: seen.append(batch.status))
    assert seen[-1] == "completed" and job.is_terminal and job.status == "completed"
    assert [i.custom_id for i in result.items] == b.custom_ids
    assert result.counts[Outcome.SUCCEEDED] == 6 and all(isinstance(i.content, str) for i in result.succeeded)
    meta = job.batches[0].metadata
    assert meta["team"] == "evals" and meta["batch_openai_fingerprint"] and meta["description"] == "life test"
    assert job.request_counts.completed == 6


def test_submit_is_idempotent_by_fingerprint(client: Any, server: LocalBatchServer) -> None:
    b = chat_builder(3, prefix="idem")
    first = b.submit(client)
    before = server.stats()
    second = b.submit(client)
    after = server.stats()
    assert second.batch_id == first.batch_id
    assert after.get("POST /v1/batches", 0) == before.get("POST /v1/batches", 0)
    assert after.get("POST /v1/files", 0) == before.get("POST /v1/files", 0)


def test_cancelled_batch_is_not_reused(client: Any, slow_server: LocalBatchServer) -> None:
    c = slow_server.client()
    b = chat_builder(3, prefix="reuse-cancel")
    first = b.submit(c).cancel()
    with pytest.raises(BatchJobError):
        first.wait(poll_interval=0.1, timeout=30)
    second = b.submit(c)
    assert second.batch_id != first.batch_id


def test_sharded_submit_merges_results(client: Any, server: LocalBatchServer) -> None:
    b = chat_builder(7, prefix="shard")
    b.add([{"role": "user", "content": "other model"}], model="gpt-5.4-mini", custom_id="other")
    b.add_embedding(["x", "y"], model="text-embedding-3-small", custom_id="emb")
    job = b.submit(client, description="sharded", max_requests=3)
    assert len(job.batch_ids) == 5 and len(set(job.batch_ids)) == 5
    result = job.wait(poll_interval=0.02)
    assert [i.custom_id for i in result.items] == b.custom_ids
    assert result.counts[Outcome.SUCCEEDED] == 9
    assert result.get("emb").endpoint == "/v1/embeddings" and len(result.get("emb").content) == 2
    assert all(b.metadata["batch_openai_shard"].endswith("/5") for b in job.batches)
    out, err = job.download(Path(result._files[0]).parent / "dl")
    assert out is not None and len(out.read_bytes().splitlines()) == 9 and err is None


def test_from_id_and_result(client: Any, tmp_path: Path) -> None:
    b = chat_builder(2, prefix="fromid")
    job = b.submit(client, description="reconnect")
    job.wait(poll_interval=0.02)
    again = BatchJob.from_id(client, job.batch_id)
    assert again.status == "completed" and again.description == "reconnect"
    assert {i.custom_id for i in again.result()} == set(b.custom_ids)
    with pytest.raises(BatchNotFoundError):
        BatchJob.from_id(client, "batch_does_not_exist", retry=FAST)


def test_line_failures_are_items_not_errors(client: Any, server: LocalBatchServer) -> None:
    server.set_line_failure_rate(1.0)
    b = chat_builder(3, prefix="allfail")
    result = b.submit(client).wait(poll_interval=0.02)  # completed with output_file_id null
    assert result.counts[Outcome.FAILED] == 3
    assert all(i.status_code and i.status_code >= 500 and i.error for i in result.failed)


def test_failed_batch_raises_with_errors(client: Any, tmp_path: Path) -> None:
    # Two models in one file: the service fails the whole batch in validation.
    path = tmp_path / "mixed.jsonl"
    rows = [
        {
            "custom_id": f"m{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
        }
        for i, model in enumerate(["gpt-4o-mini", "gpt-4o"])
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    job = submit_file(client, path, endpoint="/v1/chat/completions", description="mixed")
    assert job.batches[0].metadata["batch_openai_fingerprint"] == fingerprint_file(path)
    with pytest.raises(BatchJobError) as info:
        job.wait(poll_interval=0.02)
    err = info.value
    assert err.status == "failed" and err.batch_id == job.batch_id
    assert err.errors and err.errors[0].code == "mismatched_model"
    assert err.result is not None and len(err.result) == 0
    # never raises BatchJobError:
    assert isinstance(job.result(expected_ids=["m0", "m1"]), BatchResult)
    assert job.result(expected_ids=["m0", "m1"]).counts[Outcome.MISSING] == 2


def test_submit_file_validates_before_upload(client: Any, server: LocalBatchServer, tmp_path: Path) -> None:
    before = server.stats().get("POST /v1/files", 0)
    with pytest.raises(BatchValidationError, match="missing or empty"):
        submit_file(client, tmp_path / "nope.jsonl", endpoint="/v1/chat/completions")
    (tmp_path / "x.jsonl").write_text("{}\n")
    with pytest.raises(BatchValidationError, match="unknown endpoint"):
        submit_file(client, tmp_path / "x.jsonl", endpoint="/v1/chat")
    with pytest.raises(BatchValidationError, match="metadata"):
        submit_file(client, tmp_path / "x.jsonl", endpoint="/v1/chat/completions", metadata={"n": 1})  # type: ignore[dict-item]
    assert server.stats().get("POST /v1/files", 0) == before


def _wait_for_progress(job: BatchJob, at_least: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job.refresh()
        if job.status == "in_progress" and job.request_counts.completed >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"batch never made progress: {job.batches[0]}")


def test_cancelled_batch_keeps_partial_results(slow_server: LocalBatchServer) -> None:
    c = slow_server.client()
    b = chat_builder(40, prefix="cancel-partial")
    job = b.submit(c)
    _wait_for_progress(job, 1)
    job.cancel()
    assert job.status in ("cancelling", "cancelled")
    with pytest.raises(BatchJobError) as info:
        job.wait(poll_interval=0.1, timeout=60)
    err = info.value
    assert err.status == "cancelled" and err.batch_id == job.batch_id
    counts = err.result.counts
    assert counts[Outcome.SUCCEEDED] >= 1 and counts[Outcome.CANCELLED] >= 1
    assert sum(counts.values()) == 40 and counts[Outcome.MISSING] == 0
    assert job.cancel().status == "cancelled"  # cancelling a finished job is a no-op


def test_expired_batch_keeps_partial_results(slow_server: LocalBatchServer) -> None:
    c = slow_server.client()
    b = chat_builder(40, prefix="expire-partial")
    job = b.submit(c)
    _wait_for_progress(job, 1)
    slow_server.expire(job.batch_id)
    with pytest.raises(BatchJobError) as info:
        job.wait(poll_interval=0.1, timeout=60)
    err = info.value
    assert err.status == "expired"
    counts = err.result.counts
    assert counts[Outcome.SUCCEEDED] >= 1 and counts[Outcome.EXPIRED] >= 1
    assert sum(counts.values()) == 40
    assert all(i.error["code"] == "batch_expired" for i in err.result.items if i.outcome is Outcome.EXPIRED)


def test_wait_timeout(slow_server: LocalBatchServer) -> None:
    c = slow_server.client()
    job = chat_builder(2, prefix="timeout").submit(c)
    started = time.monotonic()
    with pytest.raises(BatchTimeoutError) as info:
        job.wait(poll_interval=0.05, timeout=0.3)
    assert time.monotonic() - started < 2
    assert info.value.batch_id == job.batch_id and not job.is_terminal
    assert isinstance(info.value, TimeoutError)
    job.cancel()


def test_result_before_terminal_is_refused(slow_server: LocalBatchServer) -> None:
    job = chat_builder(1, prefix="early").submit(slow_server.client())
    with pytest.raises(Exception, match="not finished"):
        job.result()
    job.cancel()


def test_token_limit_failure() -> None:
    with LocalBatchServer(step_seconds=0.0, enqueued_token_limit=5) as srv:
        job = chat_builder(3, prefix="tokens").submit(srv.client())
        with pytest.raises(BatchJobError) as info:
            job.wait(poll_interval=0.02)
    assert info.value.status == "failed" and info.value.errors[0].code == "token_limit_exceeded"


def test_builder_submit_empty_uploads_nothing(client: Any, server: LocalBatchServer) -> None:
    before = server.stats().get("POST /v1/files", 0)
    with pytest.raises(BatchValidationError, match="empty"):
        BatchRequestBuilder().submit(client)
    assert server.stats().get("POST /v1/files", 0) == before


# ---------------------------------------------------------------- pure decisions on batch objects


def _batch(status: str, **kw: Any) -> Any:
    from openai.types import Batch

    base = {
        "id": "b",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "f",
        "completion_window": "24h",
        "created_at": 0,
        "status": status,
    }
    return Batch.model_validate(base | kw)


def test_completed_with_late_or_null_output_file() -> None:
    counts = {"total": 2, "completed": 2, "failed": 0}
    assert not files_settled(_batch("completed", request_counts=counts))  # id lags the status: poll again
    assert files_settled(_batch("completed", request_counts=counts, output_file_id="file-1"))
    all_failed = {"total": 2, "completed": 0, "failed": 2}
    assert files_settled(_batch("completed", request_counts=all_failed, error_file_id="file-2"))
    assert files_settled(_batch("failed"))


def test_aggregate_status() -> None:
    assert aggregate_status([_batch("completed"), _batch("in_progress")]) == "in_progress"
    assert aggregate_status([_batch("validating"), _batch("completed")]) == "in_progress"
    assert aggregate_status([_batch("validating"), _batch("validating")]) == "validating"
    assert aggregate_status([_batch("completed"), _batch("expired")]) == "expired"
    assert aggregate_status([_batch("cancelled"), _batch("failed")]) == "failed"
    assert aggregate_status([_batch("completed"), _batch("completed")]) == "completed"
