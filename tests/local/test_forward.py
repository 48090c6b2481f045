"""`--responder forward`: lines go to an OpenAI-compatible upstream, with retries and error lines."""

from __future__ import annotations

import time
from typing import Any

import pytest
from local_helpers import chat_line, read_lines, submit, wait
from local_upstream_app import ScriptedUpstream

from batch_openai.local import LocalBatchServer

FAST: dict[str, Any] = {"step_seconds": 0, "responder": "forward", "upstream_backoff_seconds": 0.01}


def test_forwarding_with_retries_errors_and_bounded_concurrency() -> None:
    with ScriptedUpstream() as upstream:
        srv = LocalBatchServer(
            step_seconds=0,
            responder="forward",
            upstream=upstream.base_url,
            concurrency=4,
            upstream_api_key="sk-up",
        )
        with srv:
            client = srv.client(max_retries=0)
            texts = [f"hello {i}" for i in range(20)] + ["bad", "flaky 1", "flaky 2"]
            lines = [chat_line(i, content=t) for i, t in enumerate(texts)]
            done = wait(client, submit(client, lines).id, timeout=30)
            ok = {x["custom_id"]: x for x in read_lines(client, done.output_file_id)}
            bad = {x["custom_id"]: x for x in read_lines(client, done.error_file_id)}
    assert done.status == "completed"
    assert done.request_counts.completed == 22 and done.request_counts.failed == 1
    assert ok["req-0"]["response"]["body"]["choices"][0]["message"]["content"] == "echo hello 0"
    assert ok["req-21"]["response"]["status_code"] == 200 and upstream.attempts["flaky 1"] == 2
    err = bad["req-20"]["response"]
    assert err["status_code"] == 400 and err["body"]["error"]["code"] == "context_length_exceeded"
    assert upstream.attempts["bad"] == 1  # a 400 is not retried
    assert 1 < upstream.max_in_flight <= 4
    assert upstream.auth == {"Bearer sk-up"}
    assert done.usage.input_tokens == 22 * 7 and done.usage.output_tokens == 22 * 2


def test_persistent_5xx_and_unreachable_upstream_become_error_lines() -> None:
    with ScriptedUpstream() as upstream, LocalBatchServer(**FAST, upstream=upstream.base_url) as srv:
        client = srv.client(max_retries=0)
        done = wait(client, submit(client, [chat_line(0, content="down")]).id, timeout=30)
        bad = read_lines(client, done.error_file_id)
    assert done.status == "completed" and done.output_file_id is None
    assert bad[0]["response"]["status_code"] == 503 and upstream.attempts["down"] == 5
    with LocalBatchServer(**FAST, upstream="http://127.0.0.1:9/v1") as srv:
        client = srv.client(max_retries=0)
        done = wait(client, submit(client, [chat_line(0)]).id, timeout=30)
        bad = read_lines(client, done.error_file_id)
    assert bad[0]["response"]["status_code"] == 502
    assert bad[0]["response"]["body"]["error"]["code"] == "upstream_error"


def test_cancel_does_not_wait_for_a_hung_upstream() -> None:
    with ScriptedUpstream() as upstream, LocalBatchServer(**FAST, upstream=upstream.base_url) as srv:
        client = srv.client(max_retries=0)
        batch = submit(client, [chat_line(0, content="quick"), chat_line(1, content="hang")])
        wait(client, batch.id, until=("in_progress",))
        while client.batches.retrieve(batch.id).request_counts.completed < 1:
            time.sleep(0.02)
        client.batches.cancel(batch.id)
        t0 = time.monotonic()
        done = wait(client, batch.id, timeout=10)
        assert time.monotonic() - t0 < 5
        bad = read_lines(client, done.error_file_id)
    assert done.status == "cancelled" and done.request_counts.completed == 1
    assert [(x["custom_id"], x["error"]["code"]) for x in bad] == [("req-1", "batch_cancelled")]


def test_forward_needs_an_http_upstream() -> None:
    with pytest.raises(ValueError, match="upstream"):
        LocalBatchServer(responder="forward")
    with pytest.raises(ValueError, match="http"):
        LocalBatchServer(responder="forward", upstream="ftp://x").start()
