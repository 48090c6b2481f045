"""Faults (issue 8, item 2): the flow, run in-process on the session's Prefect server against a local
Batch API that misbehaves, finishes correctly, or stops with a clear error and state to resume from."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flows_harness import PrefectServer, wait_until
from robust_helpers import assert_no_duplicate_batches, assert_one_row_per_input, fresh_requests

from batch_openai.flows import run_batch
from batch_openai.local import LocalBatchServer

KEY = "sk-faults-test-key"
CONTENT = "GET /v1/files/{file_id}/content"


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """The key the local server requires, reaching the tasks only through the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def _run(server: LocalBatchServer, src: Path, out: Path, **options: Any) -> dict[str, Any]:
    options = {"poll_interval": 0.1, "max_poll_interval": 0.3, **options}
    return run_batch(src, out, base_url=server.base_url, work_dir=str(src.parent / "work"), **options)


def _all_succeeded(src: Path, out: Path, server: LocalBatchServer, batches: int) -> list[dict[str, Any]]:
    rows = assert_one_row_per_input(src, out)
    assert {r["outcome"] for r in rows} == {"succeeded"}
    assert len(assert_no_duplicate_batches(server.client())) == batches
    return rows


@pytest.fixture
def in_tmp(robust_prefect_api: PrefectServer, key_env: str, tmp_path: Path) -> Iterator[Path]:
    """A tmp dir for a flow run on the session Prefect server with the key set."""
    yield tmp_path


def test_a_fifth_of_all_calls_failing_with_429_500_or_drops_still_finishes(in_tmp: Path):
    src = fresh_requests(in_tmp / "in.jsonl", 60)
    out = in_tmp / "out.jsonl"
    with LocalBatchServer(step_seconds=0.2, api_key=KEY, seed=8) as server:
        for kind in ("429", "500", "drop"):  # 1 - 0.928^3 ≈ 20 % of calls get one of them
            server.add_fault(route="*", kind=kind, rate=0.072, retry_after_ms=20)
        summary = _run(server, src, out, batch_size=10)
        fired = {f["kind"]: f["fired"] for f in server.faults()}
        calls = sum(server.stats().values())
        server.clear_faults()
        _all_succeeded(src, out, server, batches=6)
    assert all(fired.values()), fired  # every kind of fault really happened on the way
    assert sum(fired.values()) >= 0.1 * calls, (fired, calls)
    assert summary["outcomes"]["succeeded"] == 60


@pytest.mark.parametrize("times", [1, 3])
def test_lost_create_answers_make_one_batch(times: int, in_tmp: Path):
    src = fresh_requests(in_tmp / "in.jsonl", 6)
    out = in_tmp / "out.jsonl"
    with LocalBatchServer(step_seconds=0.05, api_key=KEY) as server:
        server.add_fault(route="POST /v1/batches", kind="lost", nth=1, times=times)
        _run(server, src, out)
        assert server.faults()[0]["fired"] == 1  # the lost answer's batch was found, not made again
        _all_succeeded(src, out, server, batches=1)


def test_a_truncated_download_is_fetched_again(in_tmp: Path):
    """Half the output file arrives and the connection closes, twice: the download starts again."""
    src = fresh_requests(in_tmp / "in.jsonl", 8)
    out = in_tmp / "out.jsonl"
    with LocalBatchServer(step_seconds=0.05, api_key=KEY) as server:
        server.add_fault(route=CONTENT, kind="truncate", nth=1, times=2)
        _run(server, src, out)
        assert server.faults()[0]["fired"] == 2
        _all_succeeded(src, out, server, batches=1)


def test_a_stall_in_finalizing_is_waited_out(in_tmp: Path):
    src = fresh_requests(in_tmp / "in.jsonl", 5)
    out = in_tmp / "out.jsonl"
    with LocalBatchServer(step_seconds=0.05, api_key=KEY) as server:
        server.stall_finalizing(2.0)
        seen: list[str] = []
        started = time.monotonic()
        watcher = threading.Thread(target=_watch_statuses, args=(server, seen, 30.0), daemon=True)
        watcher.start()
        _run(server, src, out)
        assert time.monotonic() - started >= 2.0
        _all_succeeded(src, out, server, batches=1)
    assert "finalizing" in seen


def _watch_statuses(server: LocalBatchServer, seen: list[str], timeout: float) -> None:
    client = server.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and "completed" not in seen:
        for batch in client.batches.list(limit=5):
            if batch.status not in seen:
                seen.append(batch.status)
        time.sleep(0.05)


def test_expiry_keeps_the_finished_lines_and_marks_the_rest_expired(in_tmp: Path):
    n = 40
    src = fresh_requests(in_tmp / "in.jsonl", n)
    out = in_tmp / "out.jsonl"
    with LocalBatchServer(step_seconds=1.5, api_key=KEY) as server:
        client = server.client()
        expired = threading.Event()

        def expire_half_way() -> None:
            def partly_done() -> bool:
                batches = client.batches.list(limit=1).data
                return bool(batches) and 0 < batches[0].request_counts.completed < n

            if wait_until(partly_done, timeout=60, interval=0.01):
                server.expire(client.batches.list(limit=1).data[0].id)
                expired.set()

        threading.Thread(target=expire_half_way, daemon=True).start()
        summary = _run(server, src, out, max_rounds=1)
        assert expired.is_set()
        assert len(assert_no_duplicate_batches(client)) == 1
    rows = assert_one_row_per_input(src, out)
    by = {o: [r for r in rows if r["outcome"] == o] for o in ("succeeded", "expired")}
    assert by["succeeded"] and by["expired"] and len(by["succeeded"]) + len(by["expired"]) == n
    assert all(r["error"]["code"] == "batch_expired" for r in by["expired"])
    assert all(r["content"] for r in by["succeeded"])
    assert summary["outcomes"]["expired"] == len(by["expired"])


def test_failed_lines_get_more_rounds_and_every_row_keeps_its_reason(in_tmp: Path):
    n = 30
    src = fresh_requests(in_tmp / "in.jsonl", n)
    out = in_tmp / "out.jsonl"
    with LocalBatchServer(step_seconds=0.05, api_key=KEY, line_failure_rate=0.2, seed=3) as server:
        summary = _run(server, src, out, max_rounds=3)
        assert_no_duplicate_batches(server.client())
    rows = assert_one_row_per_input(src, out)
    assert summary["rounds"] >= 2 and any(r["round"] > 1 for r in rows)
    for row in rows:
        assert row["outcome"] in ("succeeded", "failed")
        if row["outcome"] == "failed":
            assert row["status_code"] == 500 and row["error"]["message"]


def test_an_output_file_gone_404_stops_with_a_clear_error(in_tmp: Path):
    src = fresh_requests(in_tmp / "in.jsonl", 4)
    out = in_tmp / "out.jsonl"
    with LocalBatchServer(step_seconds=0.05, api_key=KEY) as server:
        client = server.client()
        # Hold the download back 1.5 s (retry-after is honoured as given) while the file is deleted.
        server.add_fault(route=CONTENT, kind="429", times=1, retry_after_ms=1500)
        gone: list[str] = []

        def delete_output_file() -> None:
            if wait_until(lambda: server.stats().get(CONTENT, 0) >= 1, timeout=60, interval=0.01):
                [batch] = client.batches.list(limit=1).data
                client.files.delete(batch.output_file_id)  # the output file is gone for good
                gone.append(batch.output_file_id)

        deleter = threading.Thread(target=delete_output_file, daemon=True)
        deleter.start()  # the flow itself runs here: Prefect's settings context is per thread
        with pytest.raises(Exception) as first:
            _run(server, src, out)
        deleter.join(10)
        assert gone, "the download never started"
        with pytest.raises(Exception) as again:  # a rerun re-attaches and says the same, paying nothing
            _run(server, src, out)
        assert len(assert_no_duplicate_batches(client)) == 1
    for exc in (first.value, again.value):
        text = str(exc)
        assert gone[0] in text and ("404" in text or "not found" in text.lower()), text
        assert KEY not in text
    assert not out.exists()


def test_the_service_going_away_mid_wait_is_waited_out(in_tmp: Path):
    """The whole server stops for a while (connection refused) and comes back on the same state."""
    src = fresh_requests(in_tmp / "in.jsonl", 12)
    out = in_tmp / "out.jsonl"
    with LocalBatchServer(step_seconds=0.5, api_key=KEY, state_dir=in_tmp / "state") as server:
        client = server.client()
        outage: list[float] = []

        def go_away_and_return() -> None:
            def running() -> bool:
                return any(b.status == "in_progress" for b in client.batches.list(limit=1))

            if wait_until(running, timeout=60, interval=0.02):
                server.stop()
                time.sleep(1.5)
                server.start()
                outage.append(1.5)

        helper = threading.Thread(target=go_away_and_return, daemon=True)
        helper.start()
        _run(server, src, out)
        helper.join(10)
        assert outage, "the server never went away"
        _all_succeeded(src, out, server, batches=1)
