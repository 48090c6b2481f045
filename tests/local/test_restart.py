"""State in --state-dir: a restart keeps files and batches, and in-flight batches carry on."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from local_helpers import chat_line, read_lines, submit, upload, wait

from batch_openai.cli.local import _add_fault_spec
from batch_openai.local import LocalBatchServer
from batch_openai.local.faults import FaultBoard


def wait_completed_at_least(client: Any, batch_id: str, n: int) -> None:
    deadline = time.monotonic() + 15
    while client.batches.retrieve(batch_id).request_counts.completed < n:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_restart_resumes_in_flight_batches(tmp_path: Path) -> None:
    srv = LocalBatchServer(step_seconds=1.0, state_dir=tmp_path)
    with srv:
        client = srv.client(max_retries=0)
        done_before = submit(client, [chat_line(i) for i in range(2)])
        running = submit(client, [chat_line(i) for i in range(40)], metadata={"fp": "x1"})
        kept_file = upload(client, [chat_line(9)])
        wait_completed_at_least(client, running.id, 3)
        srv.stop()  # as if the process died mid-batch
        work = tmp_path / "work" / f"{running.id}.out"
        with open(work, "ab") as fh:
            fh.write(b'{"id":"batch_req_torn","custom_id":"req-39","respo')  # a write cut by the crash
        srv.start()
        client = srv.client(max_retries=0)
        assert client.files.retrieve(kept_file.id).bytes == kept_file.bytes
        resumed = wait(client, running.id, timeout=30)
        assert resumed.status == "completed" and resumed.metadata == {"fp": "x1"}
        ok = read_lines(client, resumed.output_file_id)
        assert sorted(x["custom_id"] for x in ok) == sorted(f"req-{i}" for i in range(40))
        assert resumed.request_counts.completed == 40 and resumed.error_file_id is None
        assert wait(client, done_before.id).status == "completed"
        first_port = srv.port
    # A new server (a new process, in effect) on the same state directory sees everything.
    with LocalBatchServer(step_seconds=0, state_dir=tmp_path) as again:
        client = again.client(max_retries=0)
        ids = [b.id for b in client.batches.list(limit=100)]
        assert ids == [running.id, done_before.id]
        assert client.files.content(resumed.output_file_id).content
        assert again.port != 0 and first_port != 0


def test_restart_during_validating_and_cancelling(tmp_path: Path) -> None:
    with LocalBatchServer(step_seconds=1.0, state_dir=tmp_path) as srv:
        client = srv.client(max_retries=0)
        validating = submit(client, [chat_line(i) for i in range(3)])
        cancelling = submit(client, [chat_line(i) for i in range(30)])
        wait(client, cancelling.id, until=("in_progress",))
        client.batches.cancel(cancelling.id)
        srv.restart()
        client = srv.client(max_retries=0)
        assert wait(client, validating.id).status == "completed"
        cancelled = wait(client, cancelling.id)
        assert cancelled.status == "cancelled"
        lines = read_lines(client, cancelled.output_file_id) + read_lines(client, cancelled.error_file_id)
        assert sorted(x["custom_id"] for x in lines) == sorted(f"req-{i}" for i in range(30))


def serve_cmd(*flags: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from batch_openai.cli import main; main()",
        "local",
        "serve",
        "--port",
        "0",
        *flags,
    ]


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = next((w for w in line.split() if w.startswith("http://")), None)
    if url is None:
        proc.kill()
        pytest.fail(f"serve printed no URL: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, url


def test_cli_serve_faults_admin_api_and_restart(tmp_path: Path) -> None:
    cmd = serve_cmd(
        "--step-seconds",
        "0",
        "--state-dir",
        str(tmp_path),
        "--api-key",
        "sk-cli",
        "--seed",
        "5",
        "--fault",
        "POST /v1/batches=429,nth=1,retry_after_ms=5",
    )
    proc, url = start(cmd)
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        client = openai.OpenAI(api_key="sk-cli", base_url=url, max_retries=0)
        f = upload(client, [chat_line(i) for i in range(3)])
        with pytest.raises(openai.RateLimitError):
            client.batches.create(
                input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        batch = client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert wait(client, batch.id).status == "completed"
        root = url[: -len("/v1")]
        assert httpx.get(root + "/_local/stats").json()["POST /v1/batches"] == 2
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(api_key="sk-other", base_url=url, max_retries=0).batches.list()
    finally:
        proc.terminate()
        proc.wait(10)
    proc, url = start(serve_cmd("--step-seconds", "0", "--state-dir", str(tmp_path), "--api-key", "sk-cli"))
    try:
        client = openai.OpenAI(api_key="sk-cli", base_url=url, max_retries=0)
        assert client.batches.retrieve(batch.id).status == "completed"
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_rejects_bad_flags() -> None:
    out = subprocess.run(serve_cmd("--responder", "forward"), capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "upstream" in out.stderr


def test_fault_flag_parsing() -> None:
    board = FaultBoard()
    _add_fault_spec(board, "GET /v1/batches/{batch_id}=drop,nth=2,times=3")
    _add_fault_spec(board, "*=429,rate=0.5,retry_after_ms=20")
    assert [(f["route"], f["kind"], f["nth"], f["times"], f["rate"]) for f in board.list()] == [
        ("GET /v1/batches/{batch_id}", "drop", 2, 3, None),
        ("*", "429", None, None, 0.5),
    ]
    bad_specs = (
        ("POST /v1/nothing=429", "unknown route"),
        ("GET /v1/batches", "ROUTE=KIND"),
        ("*=500,every=2", "unknown option"),
    )
    for bad, why in bad_specs:
        with pytest.raises(ValueError, match=why):
            _add_fault_spec(board, bad)
