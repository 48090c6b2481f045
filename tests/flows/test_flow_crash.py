"""`batch-openai run` as a real subprocess: SIGKILL it at several points, rerun, count batches.

The local Batch API runs in this process (its stall/fault/step controls and `stats()` steer where the
run is when it dies); the CLI talks to it over HTTP and to the session's Prefect server, sharing its
PREFECT_HOME (where the submit cache records live), exactly as two runs on one machine would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from flows_harness import (
    PrefectServer,
    batch_openai_cmd,
    count_batches,
    read_rows,
    wait_until,
    write_requests,
)

from batch_openai.local import LocalBatchServer

KEY = "sk-crash-test-key"


def _start(
    server: LocalBatchServer, prefect: PrefectServer, src: Path, out: Path, *extra: str
) -> subprocess.Popen:
    cmd = batch_openai_cmd(
        "run",
        str(src),
        "--output",
        str(out),
        "--poll-interval",
        "0.2",
        "--max-poll-interval",
        "0.5",
        "--base-url",
        server.base_url,
        "--work-dir",
        str(src.parent / "work"),
        *extra,
    )
    log = open(src.parent / f"run-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, env=prefect.env(OPENAI_API_KEY=KEY), stdout=log, stderr=subprocess.STDOUT)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def _rerun(server: LocalBatchServer, prefect: PrefectServer, src: Path, out: Path, *extra: str) -> None:
    proc = _start(server, prefect, src, out, *extra)
    assert proc.wait(180) == 0, sorted(src.parent.glob("run-*.log"))[-1].read_text()[-3000:]


def _assert_complete(out: Path, n: int) -> list[dict]:
    rows = read_rows(out)
    assert len(rows) == n and {r["outcome"] for r in rows} == {"succeeded"}
    return rows


@pytest.mark.slow  # the default run keeps the crash right after create (test_robust_crash_matrix.py)
def test_sigkill_mid_wait_then_rerun_reattaches(prefect_server: PrefectServer, tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 12)
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.6, api_key=KEY) as server:
        client = server.client()
        proc = _start(server, prefect_server, src, out, "--batch-size", "4")
        assert wait_until(lambda: count_batches(client) == 3, timeout=90), "the run never created its batches"
        time.sleep(0.3)  # let the cache records land, then die mid-wait
        _kill(proc)
        assert not out.exists()
        _rerun(server, prefect_server, src, out, "--batch-size", "4")
        assert count_batches(client) == 3
    _assert_complete(out, 12)


@pytest.mark.slow
def test_sigkill_early_then_after_upload_then_mid_collect_then_finish(
    prefect_server: PrefectServer, tmp_path: Path
):
    """One job killed three times in a row at three different stages; the fourth run finishes it."""
    src = write_requests(tmp_path / "in.jsonl", 8)
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.1, api_key=KEY) as server:
        client = server.client()
        # 1. Early: still importing, building or submitting.
        proc = _start(server, prefect_server, src, out, "--batch-size", "4")
        time.sleep(1.5)
        _kill(proc)
        made = count_batches(client)
        # 2. After upload, before create: creates fail until the process dies.
        server.add_fault(route="POST /v1/batches", kind="500", times=10_000)
        uploads = server.stats().get("POST /v1/files", 0)
        creates = server.stats().get("POST /v1/batches", 0)
        proc = _start(server, prefect_server, src, out, "--batch-size", "4")
        if made < 2:
            assert wait_until(lambda: server.stats().get("POST /v1/files", 0) > uploads, timeout=90)
            assert wait_until(lambda: server.stats().get("POST /v1/batches", 0) > creates, timeout=60)
        else:
            time.sleep(2.0)
        _kill(proc)
        server.clear_faults()
        assert count_batches(client) == made  # nothing was created while creates failed
        # 3. Mid-collect: downloads fail until the process dies.
        server.add_fault(route="GET /v1/files/{file_id}/content", kind="500", times=10_000)
        downloads = server.stats().get("GET /v1/files/{file_id}/content", 0)
        proc = _start(server, prefect_server, src, out, "--batch-size", "4")
        assert wait_until(
            lambda: server.stats().get("GET /v1/files/{file_id}/content", 0) > downloads, timeout=90
        )
        _kill(proc)
        server.clear_faults()
        assert not out.exists()
        # 4. The same command finishes the job with the two batches it already made.
        _rerun(server, prefect_server, src, out, "--batch-size", "4")
        assert count_batches(client) == 2
    _assert_complete(out, 8)


@pytest.mark.slow
def test_sigkill_between_rounds(prefect_server: PrefectServer, tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 20)
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.4, api_key=KEY) as server:
        client = server.client()
        proc = _start(server, prefect_server, src, out)
        assert wait_until(
            lambda: any(b.status == "in_progress" for b in client.batches.list(limit=5)),
            timeout=90,
            interval=0.02,
        )
        first = next(iter(client.batches.list(limit=5)))
        server.add_fault(route="POST /v1/batches", kind="500", times=10_000)  # round 2's create will hang
        server.expire(first.id)
        assert wait_until(lambda: server.stats().get("POST /v1/batches", 0) >= 2, timeout=90)
        _kill(proc)
        server.clear_faults()
        _rerun(server, prefect_server, src, out)
        assert count_batches(client) == 2  # round 1 re-attached, round 2 made once
    rows = _assert_complete(out, 20)
    assert {r["round"] for r in rows} == {1, 2}


@pytest.mark.slow
def test_two_runs_of_the_same_input_at_once_make_one_batch_per_shard(
    prefect_server: PrefectServer, tmp_path: Path
):
    src = write_requests(tmp_path / "in.jsonl", 8)
    out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    with LocalBatchServer(step_seconds=0.2, api_key=KEY) as server:
        a = _start(server, prefect_server, src, out_a, "--batch-size", "4")
        b = _start(server, prefect_server, src, out_b, "--batch-size", "4")
        assert a.wait(180) == 0 and b.wait(180) == 0
        assert count_batches(server.client()) == 2
    assert read_rows(out_a) == read_rows(out_b)


def test_bad_input_fails_fast_with_one_line_and_uploads_nothing(tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 3)
    with open(src, "a") as fh:
        fh.write('{"custom_id": "r9", "method": "POST", "url": "/v1/chat/completions"}\n')  # no body
    with LocalBatchServer(api_key=KEY) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        proc = subprocess.run(
            batch_openai_cmd(
                "run", str(src), "--output", str(tmp_path / "o.jsonl"), "--base-url", server.base_url
            ),
            env={**env, "OPENAI_API_KEY": KEY},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert server.stats().get("POST /v1/files", 0) == 0
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "line 4" in lines[0] and "body" in lines[0]
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.slow
def test_cli_runs_on_ephemeral_prefect_by_default(tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        OPENAI_API_KEY=KEY,
    )
    with LocalBatchServer(step_seconds=0.05, api_key=KEY) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        proc = subprocess.run(
            batch_openai_cmd("run", str(src), "-o", str(out), "--poll-interval", "0.1"),
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "5 rows" in proc.stdout
    _assert_complete(out, 5)
    assert (tmp_path / ".batch_openai" / "work").is_dir()  # the default work dir, under the working directory
