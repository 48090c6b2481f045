"""Errors and retries through real HTTP faults: one retry layer, Retry-After, lost creates, errors."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import openai
import pytest
from library_helpers import FAST, chat_builder

from batch_openai import (
    BatchAuthError,
    BatchJob,
    BatchTransientError,
    OpenAIBatchError,
    RetryPolicy,
    find_batch_by_fingerprint,
)
from batch_openai.local import LocalBatchServer


def calls(server: LocalBatchServer, route: str) -> int:
    return server.stats().get(route, 0)


def test_transient_errors_are_retried_once_not_stacked(client: Any, server: LocalBatchServer) -> None:
    job = chat_builder(1, prefix="stack").submit(client)
    route = "GET /v1/batches/{batch_id}"
    server.add_fault(route=route, kind="500")  # always
    before = calls(server, route)
    # The client keeps the SDK default (2 retries); ours must switch those off: 4 attempts, not 4 x 3.
    with pytest.raises(BatchTransientError) as info:
        BatchJob.from_id(client, job.batch_id, retry=FAST)
    assert calls(server, route) - before == FAST.max_attempts
    err = info.value
    assert err.status_code == 500 and err.attempts == FAST.max_attempts
    assert isinstance(err, OpenAIBatchError)


def test_429_with_retry_after_is_honoured(client: Any, server: LocalBatchServer) -> None:
    server.add_fault(route="POST /v1/files", kind="429", times=2, retry_after_ms=150)
    started = time.monotonic()
    job = chat_builder(2, prefix="ratelimit").submit(client, retry=FAST)
    elapsed = time.monotonic() - started
    assert job.batch_id and elapsed >= 0.3  # two waits of 150 ms, although FAST.max_delay is 50 ms
    assert job.wait(poll_interval=0.02).counts


def test_rate_limit_exhausted_raises_transient_with_status(client: Any, server: LocalBatchServer) -> None:
    server.add_fault(route="GET /v1/batches", kind="429", retry_after_ms=1)
    with pytest.raises(BatchTransientError) as info:
        find_batch_by_fingerprint(client, "0" * 64, retry=FAST)
    assert info.value.status_code == 429
    assert "sk-" not in str(info.value)


def test_retry_budget_in_seconds(client: Any, server: LocalBatchServer) -> None:
    server.add_fault(route="GET /v1/batches", kind="429", retry_after_ms=400)
    policy = RetryPolicy(max_attempts=50, max_seconds=0.5, base_delay=0.01, max_delay=0.01)
    started = time.monotonic()
    with pytest.raises(BatchTransientError):
        find_batch_by_fingerprint(client, "0" * 64, retry=policy)
    assert time.monotonic() - started < 1.5


def test_dropped_create_looks_before_creating_again(client: Any, server: LocalBatchServer) -> None:
    server.add_fault(route="POST /v1/batches", kind="drop", nth=1)
    creates, lists = calls(server, "POST /v1/batches"), calls(server, "GET /v1/batches")
    job = chat_builder(2, prefix="drop-create").submit(client, retry=FAST)
    assert calls(server, "POST /v1/batches") - creates == 2  # the dropped one and the real one
    # before uploading, before the second create, and the reconcile after it (one live batch per content)
    assert calls(server, "GET /v1/batches") - lists == 3
    assert job.wait(poll_interval=0.02).counts


def test_lost_create_answer_never_makes_a_second_batch(server: LocalBatchServer) -> None:
    """The create succeeds on the server but its answer never reaches us (a read timeout afterwards)."""
    lost = {"done": False}

    def lose_first_create_answer(response: httpx2.Response) -> None:
        req = response.request
        if req.method == "POST" and req.url.path.endswith("/batches") and not lost["done"]:
            lost["done"] = True
            raise httpx2.ReadTimeout("answer lost on the way back", request=req)

    http = httpx2.Client(event_hooks={"response": [lose_first_create_answer]})
    client = openai.OpenAI(api_key="sk-local", base_url=server.base_url, http_client=http)
    creates = calls(server, "POST /v1/batches")
    b = chat_builder(3, prefix="lost-answer")
    job = b.submit(client, retry=FAST)
    assert lost["done"]
    assert calls(server, "POST /v1/batches") - creates == 1  # found by fingerprint, not created again
    found = find_batch_by_fingerprint(client, job.batches[0].metadata["batch_openai_fingerprint"])
    assert found is not None and found.id == job.batch_id
    assert len(job.wait(poll_interval=0.02)) == 3


def test_rejected_create_deletes_the_upload(client: Any, server: LocalBatchServer) -> None:
    server.add_fault(route="POST /v1/batches", kind="429", retry_after_ms=1)
    uploads, deletes = calls(server, "POST /v1/files"), calls(server, "DELETE /v1/files/{file_id}")
    with pytest.raises(BatchTransientError) as info:
        chat_builder(2, prefix="rejected-create").submit(client, retry=FAST)
    assert info.value.status_code == 429
    assert calls(server, "POST /v1/files") - uploads == 1
    assert calls(server, "DELETE /v1/files/{file_id}") - deletes == 1


def test_create_with_5xx_keeps_the_upload(client: Any, server: LocalBatchServer) -> None:
    server.add_fault(route="POST /v1/batches", kind="500")
    deletes = calls(server, "DELETE /v1/files/{file_id}")
    with pytest.raises(BatchTransientError):
        chat_builder(2, prefix="5xx-create").submit(client, retry=FAST)
    # a 5xx may hide a batch that was made: its input must survive
    assert calls(server, "DELETE /v1/files/{file_id}") == deletes


def test_download_retried_after_drop(client: Any, server: LocalBatchServer) -> None:
    job = chat_builder(3, prefix="dl-drop").submit(client)
    server.add_fault(route="GET /v1/files/{file_id}/content", kind="drop", nth=1)
    result = job.wait(poll_interval=0.02)
    assert len(result.succeeded) == 3


def test_random_faults_everywhere_still_finish(client: Any, server: LocalBatchServer) -> None:
    server.add_fault(route="*", kind="500", rate=0.3)
    policy = RetryPolicy(max_attempts=12, max_seconds=30, base_delay=0.005, max_delay=0.02)
    creates = calls(server, "POST /v1/batches")
    job = chat_builder(4, prefix="chaos").submit(client, retry=policy)
    result = job.wait(poll_interval=0.02)
    assert len(result.succeeded) == 4
    made = [b for b in client.batches.list(limit=100).data if b.id == job.batch_id]
    assert len(made) == 1 and calls(server, "POST /v1/batches") - creates >= 1


def test_auth_error_after_single_retry() -> None:
    with LocalBatchServer(step_seconds=0.0, api_key="sk-right-key-123456") as srv:
        bad = srv.client(api_key="sk-wrong-key-abcdef")
        with pytest.raises(BatchAuthError) as info:
            BatchJob.from_id(bad, "batch_x", retry=FAST)
        assert srv.stats().get("GET /v1/batches/{batch_id}", 0) == 2  # first try + one retry
        assert info.value.status_code == 401
        assert "sk-wrong" not in str(info.value) and "sk-right" not in str(info.value)


def test_connection_refused_is_transient() -> None:
    client = openai.OpenAI(api_key="sk-local", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(BatchTransientError) as info:
        BatchJob.from_id(client, "batch_x", retry=RetryPolicy(max_attempts=2, base_delay=0, max_delay=0))
    assert info.value.status_code is None and info.value.attempts == 2


def test_retry_policy_backoff_has_full_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.5 and min(delays) < ceiling * 0.5  # spread over [0, ceiling]
    assert policy.delay(1, retry_after=3.5) == 3.5
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_truncated_download_is_fetched_again_sync_and_async(
    client: Any, async_client: Any, server: LocalBatchServer, tmp_path: Any
) -> None:
    import asyncio

    job = chat_builder(5, prefix="dl-torn").submit(client)
    job.wait(poll_interval=0.02)
    content = "GET /v1/files/{file_id}/content"
    server.add_fault(route=content, kind="truncate", nth=1, times=2)  # the body is cut twice, mid-stream
    out, _ = job.download(tmp_path / "sync")
    assert server.faults()[0]["fired"] == 2
    assert out is not None and len(out.read_bytes().splitlines()) == 5
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no partial file left behind
    server.clear_faults()
    server.add_fault(route=content, kind="truncate", nth=1, times=1)

    async def collect() -> Any:
        ajob = await BatchJob.async_from_id(async_client, job.batch_id, retry=FAST)
        return await ajob.async_result()

    result = asyncio.run(collect())
    assert server.faults()[0]["fired"] == 1 and len(result.succeeded) == 5


def test_a_body_cut_for_good_ends_as_transient_error(client: Any, server: LocalBatchServer) -> None:
    job = chat_builder(2, prefix="dl-cut").submit(client, retry=FAST)
    job.wait(poll_interval=0.02)
    server.add_fault(route="GET /v1/files/{file_id}/content", kind="truncate")  # always
    with pytest.raises(BatchTransientError) as info:
        job.result()
    assert info.value.attempts == FAST.max_attempts and info.value.status_code is None
    assert "RemoteProtocolError" in str(info.value)


def test_transport_errors_of_either_http_library_are_transient() -> None:
    import httpx

    from batch_openai._errors import classify

    assert classify(httpx2.RemoteProtocolError("peer closed connection")) == "transient"
    assert classify(httpx2.ReadTimeout("slow body")) == "transient"
    assert classify(httpx.ReadError("reset")) == "transient"
    assert classify(ValueError("not ours")) is None
