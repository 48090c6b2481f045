"""The clock: validating -> in_progress (counts rising) -> finalizing -> completed; cancel; expiry."""

from __future__ import annotations

import time
from typing import Any

import pytest
from local_helpers import chat_line, read_lines, submit, wait

from batch_openai.local import LocalBatchServer


def watch(client: Any, batch_id: str, timeout: float = 20) -> tuple[list[str], list[int], Any]:
    """Poll to the end; return the statuses seen (in order), completed counts seen, final batch."""
    statuses: list[str] = []
    counts: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        b = client.batches.retrieve(batch_id)
        if not statuses or statuses[-1] != b.status:
            statuses.append(b.status)
        if b.status == "in_progress":
            counts.append(b.request_counts.completed)
        if b.status in ("completed", "failed", "expired", "cancelled"):
            return statuses, counts, b
        time.sleep(0.02)
    raise AssertionError(f"stuck: {statuses}")


def test_statuses_in_order_with_rising_counts() -> None:
    with LocalBatchServer(step_seconds=0.4) as srv:
        client = srv.client(max_retries=0)
        t0 = time.monotonic()
        statuses, counts, done = watch(client, submit(client, [chat_line(i) for i in range(20)]).id)
        elapsed = time.monotonic() - t0
    assert statuses == ["validating", "in_progress", "finalizing", "completed"]
    assert elapsed >= 1.2  # validating + in_progress + finalizing, each at least one step
    assert counts == sorted(counts) and counts[0] < 20 and len(set(counts)) > 2
    assert done.request_counts.completed == 20


def test_cancel_keeps_finished_lines_and_marks_the_rest() -> None:
    with LocalBatchServer(step_seconds=1.0) as srv:
        client = srv.client(max_retries=0)
        batch = submit(client, [chat_line(i) for i in range(40)])
        deadline = time.monotonic() + 10
        while client.batches.retrieve(batch.id).request_counts.completed < 5:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        cancelling = client.batches.cancel(batch.id)
        assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
        assert client.batches.cancel(batch.id).status == "cancelling"  # idempotent while cancelling
        done = wait(client, batch.id)
        ok, bad = read_lines(client, done.output_file_id), read_lines(client, done.error_file_id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    assert 5 <= len(ok) < 40
    assert {x["custom_id"] for x in ok} | {x["custom_id"] for x in bad} == {f"req-{i}" for i in range(40)}
    assert len(ok) + len(bad) == 40
    assert all(x["response"] is None and x["error"]["code"] == "batch_cancelled" for x in bad)
    assert done.request_counts.completed == len(ok) and done.request_counts.total == 40


def test_cancel_while_validating_cancels_every_line() -> None:
    with LocalBatchServer(step_seconds=0.5) as srv:
        client = srv.client(max_retries=0)
        batch = submit(client, [chat_line(i) for i in range(3)])
        client.batches.cancel(batch.id)
        done = wait(client, batch.id)
        bad = read_lines(client, done.error_file_id)
    assert done.status == "cancelled" and done.output_file_id is None and done.in_progress_at is None
    assert [x["error"]["code"] for x in bad] == ["batch_cancelled"] * 3


def test_window_lapses_to_expired_with_partial_results() -> None:
    with LocalBatchServer(step_seconds=3.0, completion_window_seconds=1.5) as srv:
        client = srv.client(max_retries=0)
        # validating lasts 3 s but the window is 1.5 s: nothing ran.
        first = wait(client, submit(client, [chat_line(i) for i in range(4)]).id)
        bad = read_lines(client, first.error_file_id)
    assert first.status == "expired" and first.expired_at is not None and first.output_file_id is None
    assert [x["error"]["code"] for x in bad] == ["batch_expired"] * 4


def test_forced_expiry_keeps_finished_lines() -> None:
    with LocalBatchServer(step_seconds=2.0) as srv:
        client = srv.client(max_retries=0)
        batch = submit(client, [chat_line(i) for i in range(40)])
        while client.batches.retrieve(batch.id).request_counts.completed < 3:
            time.sleep(0.02)
        srv.expire(batch.id)
        done = wait(client, batch.id)
        with pytest.raises(KeyError):
            srv.expire("batch_unknown")
        ok, bad = read_lines(client, done.output_file_id), read_lines(client, done.error_file_id)
    assert done.status == "expired"
    assert len(ok) >= 3 and len(ok) + len(bad) == 40
    assert {x["error"]["code"] for x in bad} == {"batch_expired"}
    assert done.usage.output_tokens == sum(x["response"]["body"]["usage"]["completion_tokens"] for x in ok)


def test_all_lines_failed_completes_without_output_file(client: Any, server: LocalBatchServer) -> None:
    server.set_line_failure_rate(1.0)
    try:
        done = wait(client, submit(client, [chat_line(i) for i in range(3)]).id)
    finally:
        server.set_line_failure_rate(0.0)
    assert done.status == "completed" and done.output_file_id is None
    bad = read_lines(client, done.error_file_id)
    assert [x["response"]["status_code"] for x in bad] == [500] * 3
    assert all(x["response"]["body"]["error"]["type"] == "server_error" for x in bad)
    assert done.request_counts.failed == 3


def test_line_failure_rate_fails_a_share() -> None:
    with LocalBatchServer(step_seconds=0, line_failure_rate=0.3, seed=1) as srv:
        client = srv.client(max_retries=0)
        done = wait(client, submit(client, [chat_line(i) for i in range(200)]).id)
    assert (
        30 <= done.request_counts.failed <= 90
        and done.request_counts.completed + done.request_counts.failed == 200
    )


def test_shuffled_output_order() -> None:
    with LocalBatchServer(step_seconds=0, shuffle_output=True) as srv:
        client = srv.client(max_retries=0)
        done = wait(client, submit(client, [chat_line(i) for i in range(30)]).id)
        ids = [x["custom_id"] for x in read_lines(client, done.output_file_id)]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(30)) and ids != [f"req-{i}" for i in range(30)]


def test_stall_in_finalizing_and_cancel_there(client: Any, server: LocalBatchServer) -> None:
    server.stall_finalizing(30)
    try:
        batch = submit(client, [chat_line(i) for i in range(3)])
        stalled = wait(client, batch.id, until=("finalizing",))
        time.sleep(0.3)
        assert client.batches.retrieve(batch.id).status == "finalizing"
        assert stalled.finalizing_at is not None
        client.batches.cancel(batch.id)
        done = wait(client, batch.id)
    finally:
        server.stall_finalizing(0)
    assert done.status == "cancelled"
    assert len(read_lines(client, done.output_file_id)) == 3 and done.error_file_id is None


def test_lifting_a_stall_ends_finalizing_at_once(client: Any, server: LocalBatchServer) -> None:
    server.stall_finalizing(60)
    try:
        batch = submit(client, [chat_line(i) for i in range(2)])
        wait(client, batch.id, until=("finalizing",))
    finally:
        server.stall_finalizing(0)
    lifted = time.monotonic()
    done = wait(client, batch.id)
    assert done.status == "completed" and time.monotonic() - lifted < 30  # not the 60 s it entered with


def test_a_longer_step_holds_a_batch_already_validating() -> None:
    with LocalBatchServer(step_seconds=0.5) as srv:
        client = srv.client(max_retries=0)
        srv.set_step_seconds(60)
        batch = submit(client, [chat_line(0)])
        srv.set_step_seconds(0.05)  # the batch created under 60 s moves on with the new pace
        assert wait(client, batch.id).status == "completed"


def test_a_window_set_live_applies_to_new_batches_only() -> None:
    with LocalBatchServer(step_seconds=0.3) as srv:
        client = srv.client(max_retries=0)
        before = submit(client, [chat_line(0)])
        srv.set_completion_window(0.1)
        short = submit(client, [chat_line(1)])
        srv.set_completion_window(None)
        assert wait(client, short.id).status == "expired"
        assert wait(client, before.id).status == "completed"


def test_a_refused_setting_changes_nothing(server: LocalBatchServer) -> None:
    with pytest.raises(ValueError, match="step_seconds must be >= 0"):
        server.set_step_seconds(-1)
    assert server.config.step_seconds >= 0
    with pytest.raises(ValueError, match="completion_window_seconds must be > 0"):
        server.set_completion_window(0)
    assert server.config.completion_window_seconds is None
