"""The flow end to end in this process: real Prefect server, real openai client, real local Batch API."""

from __future__ import annotations

import threading
from pathlib import Path

from flows_harness import count_batches, read_rows, wait_until, write_requests

from batch_openai.flows import run_batch
from batch_openai.local import LocalBatchServer


def _batches(server: LocalBatchServer) -> list:
    return list(server.client().batches.list(limit=100))


def test_run_writes_one_row_per_input_and_rerun_reuses_every_batch(prefect_api, api_key, tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 25)
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.05, api_key=api_key) as server:
        summary = run_batch(src, out, base_url=server.base_url, batch_size=10, poll_interval=0.1)
        rows = read_rows(out)
        assert [r["custom_id"] for r in rows] == [f"r{i}" for i in range(25)]  # input order
        assert {r["outcome"] for r in rows} == {"succeeded"}
        assert all(r["content"] and r["usage"]["total_tokens"] > 0 and r["error"] is None for r in rows)
        assert summary["outcomes"]["succeeded"] == 25 and summary["total"] == 25
        assert summary["usage"]["total_tokens"] == sum(r["usage"]["total_tokens"] for r in rows)
        assert summary["estimated_cost_usd"] is not None and summary["estimated_cost_usd"] > 0
        assert len(summary["batch_ids"]) == 3 == count_batches(server.client())
        creates = server.stats().get("POST /v1/batches", 0)
        uploads = server.stats().get("POST /v1/files", 0)

        out.unlink()
        again = run_batch(src, out, base_url=server.base_url, batch_size=10, poll_interval=0.1)
        assert server.stats().get("POST /v1/batches", 0) == creates  # cache hit: nothing created
        assert server.stats().get("POST /v1/files", 0) == uploads  # and nothing uploaded
        assert sorted(again["batch_ids"]) == sorted(summary["batch_ids"])
        assert read_rows(out) == rows


def test_summary_artifact_holds_counts_tokens_and_cost(prefect_api, api_key, tmp_path: Path):
    from prefect import get_client

    src = write_requests(tmp_path / "in.jsonl", 4, prefix="art")
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        run_batch(src, tmp_path / "o.jsonl", base_url=server.base_url, poll_interval=0.05)
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        latest = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["batch-openai-summary"]))
        )
    table = latest[-1].data if latest else None
    assert table and "outcome: succeeded" in str(table) and "estimated_cost_usd" in str(table)


def test_expired_lines_get_a_second_round_and_finished_lines_are_kept(prefect_api, api_key, tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 40, prefix="exp")
    out = tmp_path / "out.jsonl"
    # Round 1's batch lapses half-way through its lines on the server's own clock (a 1.5 s window over a
    # 1 s step), however busy the machine; round 2's batch, made after that, gets the usual 24 h.
    with LocalBatchServer(step_seconds=1.0, api_key=api_key, seed=3, completion_window_seconds=1.5) as server:
        expired: list[str] = []

        def full_window_after_the_first_batch() -> None:
            client = server.client()
            if wait_until(lambda: bool(client.batches.list(limit=1).data), timeout=60, interval=0.02):
                server.set_completion_window(None)
                expired.append(client.batches.list(limit=1).data[0].id)

        watcher = threading.Thread(target=full_window_after_the_first_batch)
        watcher.start()
        summary = run_batch(src, out, base_url=server.base_url, poll_interval=0.1, max_rounds=2)
        watcher.join()
        rows = read_rows(out)
    assert expired, "the test could not expire the batch"
    assert summary["rounds"] == 2 and len(summary["batch_ids"]) == 2
    assert len(rows) == 40 and {r["outcome"] for r in rows} == {"succeeded"}
    rounds = {r["round"] for r in rows}
    assert 2 in rounds  # expired lines were retried in a new batch
    kept = [r for r in rows if r["round"] == 1]
    assert all(
        r["batch_id"] == expired[0] for r in kept
    )  # lines finished before expiry were kept, not redone


def test_max_rounds_one_reports_expired_lines_without_retrying(prefect_api, api_key, tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 6, prefix="once")
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.5, api_key=api_key, completion_window_seconds=0.2) as server:
        summary = run_batch(src, out, base_url=server.base_url, poll_interval=0.1, max_rounds=1)
        assert count_batches(server.client()) == 1
    rows = read_rows(out)
    assert len(rows) == 6 and summary["rounds"] == 1
    assert any(r["outcome"] == "expired" for r in rows)
    assert all(r["error"] for r in rows if r["outcome"] == "expired")


def test_transient_line_failures_are_retried_and_permanent_ones_reported(
    prefect_api, api_key, tmp_path: Path
):
    src = write_requests(tmp_path / "in.jsonl", 30, prefix="lf")
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.1, api_key=api_key, line_failure_rate=0.3, seed=7) as server:

        def heal_after_first_batch() -> None:
            client = server.client()
            wait_until(
                lambda: any(b.status == "completed" for b in client.batches.list(limit=10)), timeout=30
            )
            server.set_line_failure_rate(0.0)

        healer = threading.Thread(target=heal_after_first_batch)
        healer.start()
        summary = run_batch(src, out, base_url=server.base_url, poll_interval=0.1, max_rounds=3)
        healer.join()
    rows = read_rows(out)
    retried = [r for r in rows if r["round"] > 1]
    assert retried, "some lines should have failed with a 500 in round 1"
    assert {r["outcome"] for r in rows} == {"succeeded"}
    assert summary["rounds"] == 2  # round 3 was not needed


def test_token_limit_waits_for_in_flight_batches_without_spending_a_round(
    prefect_api, api_key, tmp_path: Path
):
    src = write_requests(tmp_path / "in.jsonl", 12, prefix="tok")
    out = tmp_path / "out.jsonl"
    # Each shard holds ~6 x 14 tokens; the limit admits one shard at a time.
    with LocalBatchServer(step_seconds=0.2, api_key=api_key, enqueued_token_limit=120) as server:
        summary = run_batch(src, out, base_url=server.base_url, batch_size=6, poll_interval=0.1, max_rounds=1)
        statuses = [b.status for b in _batches(server)]
    rows = read_rows(out)
    assert {r["outcome"] for r in rows} == {"succeeded"}, statuses
    assert summary["rounds"] == 1  # max_rounds=1 and still everything succeeded
    assert "failed" in statuses  # a batch really hit the limit and was resubmitted
    assert statuses.count("completed") == 2


def test_cancel_during_the_run_is_respected_and_a_rerun_resubmits_on_purpose(
    prefect_api, api_key, tmp_path: Path
):
    src = write_requests(tmp_path / "in.jsonl", 8, prefix="can")
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.3, api_key=api_key) as server:
        client = server.client()

        def cancel_when_running() -> None:
            if wait_until(lambda: count_batches(client) == 1, timeout=30, interval=0.02):
                client.batches.cancel(next(iter(client.batches.list(limit=1))).id)

        canceller = threading.Thread(target=cancel_when_running)
        canceller.start()
        first = run_batch(src, out, base_url=server.base_url, poll_interval=0.1)
        canceller.join()
        assert first["outcomes"]["cancelled"] > 0  # a person's cancel is final for that run: not retried
        assert count_batches(client) == 1

        second = run_batch(src, out, base_url=server.base_url, poll_interval=0.1)
        assert count_batches(client) == 2  # the re-attached cancelled batch was resubmitted, once
        assert second["outcomes"]["succeeded"] == 8
        third = run_batch(src, out, base_url=server.base_url, poll_interval=0.1)
        assert count_batches(client) == 2 and third["outcomes"]["succeeded"] == 8


def test_a_batch_that_can_never_be_enqueued_is_reported_failed_with_its_reason(
    prefect_api, api_key, tmp_path: Path
):
    # The shard alone is over the enqueued-token limit: every resubmission fails validation, so after the
    # bounded number of on-purpose resubmissions each line is reported `failed` with the batch's reason.
    from batch_openai.flows.batch_flow import MAX_RESUBMITS

    src = write_requests(tmp_path / "in.jsonl", 3, prefix="big")
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.0, api_key=api_key, enqueued_token_limit=5) as server:
        summary = run_batch(
            src, out, base_url=server.base_url, poll_interval=0.02, max_poll_interval=0.1, max_rounds=1
        )
        statuses = [b.status for b in _batches(server)]
    rows = read_rows(out)
    assert statuses == ["failed"] * (MAX_RESUBMITS + 1)
    assert summary["outcomes"]["failed"] == 3
    assert all(r["error"]["code"] == "token_limit_exceeded" for r in rows)


def test_csv_output_and_template_mode(prefect_api, api_key, tmp_path: Path):
    records = tmp_path / "reviews.csv"
    records.write_text('review_id,text\nx1,great\nx2,awful\nx3,"fine, I guess"\n')
    out = tmp_path / "out.csv"
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        summary = run_batch(
            records,
            out,
            base_url=server.base_url,
            poll_interval=0.05,
            prompt_template="Sentiment of: {text}",
            model="gpt-4o-mini",
            id_field="review_id",
        )
    import csv

    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["custom_id"] for r in rows] == ["x1", "x2", "x3"]
    assert {r["outcome"] for r in rows} == {"succeeded"} and summary["total"] == 3


def test_progress_artifact_reaches_100_percent(prefect_api, api_key, tmp_path: Path):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    src = write_requests(tmp_path / "in.jsonl", 4, prefix="prog")
    with LocalBatchServer(step_seconds=0.3, api_key=api_key) as server:
        run_batch(src, tmp_path / "o.jsonl", base_url=server.base_url, poll_interval=0.1)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["batch-openai-progress"]))
        )
    assert found and max(float(a.data) for a in found) == 100.0


def test_a_cached_batch_that_no_longer_exists_is_resubmitted(prefect_api, api_key, tmp_path: Path):
    from flows_harness import free_port

    src = write_requests(tmp_path / "in.jsonl", 5, prefix="gone")
    out = tmp_path / "out.jsonl"
    port = free_port()
    with LocalBatchServer(step_seconds=0.0, api_key=api_key, port=port, state_dir=tmp_path / "s1") as server:
        first = run_batch(src, out, base_url=server.base_url, poll_interval=0.05)
    # Same service address, but its batches are gone (a fresh state): the cache record points at nothing.
    with LocalBatchServer(step_seconds=0.0, api_key=api_key, port=port, state_dir=tmp_path / "s2") as server:
        second = run_batch(src, out, base_url=server.base_url, poll_interval=0.05)
        assert count_batches(server.client()) == 1
    assert second["batch_ids"] != first["batch_ids"] and second["outcomes"]["succeeded"] == 5


def test_local_demo_runs_the_bundled_job(prefect_api, tmp_path: Path, monkeypatch):
    from batch_openai.flows import run_local_demo

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the demo needs no key of yours
    summary = run_local_demo(tmp_path / "demo.jsonl", step_seconds=0.0, poll_interval=0.05)
    rows = read_rows(tmp_path / "demo.jsonl")
    assert len(rows) == 300 == summary["outcomes"]["succeeded"]
    assert rows[0]["custom_id"] == "r0000" and rows[0]["content"]


def test_a_lost_create_answer_is_found_by_fingerprint_not_created_twice(prefect_api, api_key, tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 4, prefix="lost")
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        server.add_fault(route="POST /v1/batches", kind="lost", times=1)  # created, answer never sent
        summary = run_batch(src, tmp_path / "o.jsonl", base_url=server.base_url, poll_interval=0.05)
        assert server.faults()[0]["fired"] == 1
        assert count_batches(server.client()) == 1
    assert summary["outcomes"]["succeeded"] == 4


def test_a_damaged_rows_file_is_rebuilt_from_the_finished_downloads(prefect_api, api_key, tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 6, prefix="torn")
    out = tmp_path / "out.jsonl"
    work = tmp_path / "work"
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        run_batch(src, out, base_url=server.base_url, poll_interval=0.05, work_dir=str(work))
        (rows_file,) = work.rglob("*.rows.jsonl")
        whole = rows_file.read_bytes()
        rows_file.write_bytes(whole[: len(whole) // 2])  # e.g. a power cut after the rename
        downloads = server.stats().get("GET /v1/files/{file_id}/content", 0)
        run_batch(src, out, base_url=server.base_url, poll_interval=0.05, work_dir=str(work))
        # The downloads were whole (renamed into place only when complete): reused, not fetched again.
        assert server.stats().get("GET /v1/files/{file_id}/content", 0) == downloads
    assert rows_file.read_bytes() == whole
    assert len(read_rows(out)) == 6
