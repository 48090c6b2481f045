"""Queue-aware submission against `LocalBatchServer(enqueued_token_limit=N)` with the real client."""

from __future__ import annotations

from typing import Any

import pytest
from frames_helpers import FAST, chat_requests, server_batches

from batch_openai import BatchJobError, BatchValidationError, Outcome
from batch_openai._queue import TokenQueue, limit_from_errors, token_limited
from batch_openai.local import LocalBatchServer
from batch_openai.tokens import file_input_tokens

# 12 requests of ~13 tokens in shards of 4 (~52 tokens each): the limit admits two shards at a time.
N, SHARD, LIMIT = 12, 4, 120


def _shard_tokens(tmp_path: Any) -> list[int]:
    shards = chat_requests(N, prefix="tok").write_shards(tmp_path, max_requests=SHARD)
    return [file_input_tokens(s.path, s.endpoint) for s in shards]


def test_the_shards_really_overflow_the_limit_together(tmp_path: Any) -> None:
    tokens = _shard_tokens(tmp_path)
    assert len(tokens) == 3 and sum(tokens) > LIMIT and 2 * max(tokens) <= LIMIT


def test_token_limited_batches_are_requeued_and_no_request_fails() -> None:
    with LocalBatchServer(step_seconds=0.2, enqueued_token_limit=LIMIT // 2) as srv:
        client = srv.client()
        job = chat_requests(N, prefix="tok").submit(client, max_requests=SHARD, retry=FAST)
        result = job.wait(poll_interval=0.05)
        statuses = [b.status for b in server_batches(client)]
        failed = [b for b in server_batches(client) if b.status == "failed"]
    assert result.counts[Outcome.SUCCEEDED] == N and len(result) == N
    assert failed and all(token_limited(b) for b in failed), statuses  # the limit really was hit
    assert limit_from_errors(failed[0]) == LIMIT // 2
    assert statuses.count("completed") == 3 and len(job.batch_ids) == 3
    assert all(b.status == "completed" for b in job.batches)  # the job holds the resubmitted batches
    assert all(b.metadata.get("batch_openai_fingerprint") for b in job.batches)


def test_pacing_under_the_cap_never_hits_the_limit() -> None:
    with LocalBatchServer(step_seconds=0.2, enqueued_token_limit=LIMIT) as srv:
        client = srv.client()
        job = chat_requests(N, prefix="tok").submit(
            client, max_requests=SHARD, retry=FAST, max_enqueued_tokens=LIMIT, queue_poll_interval=0.05
        )
        # submit() returned only after the last shard found room: one of the first two had left the queue.
        assert any(b.status == "completed" for b in job.batches[:2])
        result = job.wait(poll_interval=0.05)
        statuses = [b.status for b in server_batches(client)]
    assert statuses == ["completed"] * 3  # not one token_limit_exceeded
    assert result.counts[Outcome.SUCCEEDED] == N


def test_a_per_model_cap_only_paces_that_model() -> None:
    queue = TokenQueue({"gpt-4o-mini": 100})
    assert queue.cap_for("gpt-4o-mini") == 100 and queue.cap_for("gpt-4.1") is None
    with pytest.raises(BatchValidationError, match="positive whole number"):
        TokenQueue(0)


def test_a_shard_over_the_cap_is_refused_before_any_upload(fast_client: Any, fast_server: Any) -> None:
    before = fast_server.stats().get("POST /v1/files", 0)
    with pytest.raises(BatchValidationError, match=r"over max_enqueued_tokens=20.*max_requests="):
        chat_requests(N, prefix="big").submit(fast_client, max_requests=SHARD, max_enqueued_tokens=20)
    assert fast_server.stats().get("POST /v1/files", 0) == before


def test_requeueing_is_bounded_and_can_be_turned_off() -> None:
    with LocalBatchServer(step_seconds=0.0, enqueued_token_limit=5) as srv:  # no shard can ever fit
        client = srv.client()
        job = chat_requests(2, prefix="never").submit(client, retry=FAST)
        with pytest.raises(BatchJobError) as info:
            job.wait(poll_interval=0.01, token_limit_retries=2)
        assert info.value.errors[0].code == "token_limit_exceeded"
        assert len(server_batches(client)) == 3  # the first try and two resubmissions, then it gave up
        assert {i.outcome for i in info.value.result} == {Outcome.MISSING}  # never ran: not "failed"

        off = chat_requests(2, prefix="off").submit(client, retry=FAST)
        with pytest.raises(BatchJobError):
            off.wait(poll_interval=0.01, token_limit_retries=0)
        assert len(server_batches(client)) == 4  # no resubmission at all


def test_async_wait_requeues_too() -> None:
    import asyncio

    async def run(srv: LocalBatchServer) -> Any:
        job = await chat_requests(N, prefix="atok").async_submit(
            srv.async_client(), max_requests=SHARD, retry=FAST
        )
        return await job.await_completion(poll_interval=0.05)

    with LocalBatchServer(step_seconds=0.2, enqueued_token_limit=LIMIT // 2) as srv:
        result = asyncio.run(run(srv))
        failed = [b for b in server_batches(srv.client()) if b.status == "failed"]
    assert failed and all(token_limited(b) for b in failed)
    assert result.counts[Outcome.SUCCEEDED] == N
