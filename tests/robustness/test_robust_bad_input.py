"""Bad-input catalogue: `batch-openai run` on each kind gives one error line, a non-zero exit, no
traceback, and uploads nothing (the local server's call counts and file list stay empty)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flows_harness import batch_openai_cmd
from robust_bad_inputs import CATALOGUE, BadInput, req
from robust_helpers import cli_env, fresh_requests

from batch_openai import BatchValidationError, submit_file
from batch_openai.local import LocalBatchServer

KEY = "sk-bad-input-key"


@pytest.fixture(scope="module")
def bad_server() -> Iterator[LocalBatchServer]:
    """One local server for the whole catalogue: nothing may ever be uploaded to it."""
    with LocalBatchServer(api_key=KEY) as server:
        yield server


def _run_cli(server: LocalBatchServer, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the CLI; if it starts uploading, kill it at once (the test has failed by then)."""
    proc = subprocess.Popen(
        batch_openai_cmd(*args, "--base-url", server.base_url),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if server.stats().get("POST /v1/files", 0):
            proc.kill()
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def _assert_refused(server: LocalBatchServer, rc: int, out: str, err: str, mentions: tuple[str, ...]) -> None:
    assert server.stats().get("POST /v1/files", 0) == 0, "something was uploaded"
    assert list(server.client().files.list()) == []
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert rc not in (0, None) and len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for word in mentions:
        assert word.lower() in lines[0].lower(), f"{word!r} not named in {lines[0]!r}"


@pytest.mark.parametrize("kind", CATALOGUE, ids=[k.name for k in CATALOGUE])
def test_bad_input_is_refused_before_upload(kind: BadInput, bad_server: LocalBatchServer, tmp_path: Path):
    src = kind.make(tmp_path)
    out = tmp_path / "out.jsonl"
    try:
        rc, stdout, stderr = _run_cli(
            bad_server, cli_env(None, KEY), "run", str(src), "--output", str(out), *kind.extra
        )
    finally:
        if src.is_file() and src.stat().st_size > 1 << 20:
            src.unlink()  # the oversize line is 200 MB: do not keep it in pytest's retained tmp dirs
    _assert_refused(bad_server, rc, stdout, stderr, kind.mentions)
    assert not out.exists()


def test_catalogue_has_at_least_twenty_kinds():
    assert len({k.name for k in CATALOGUE}) >= 20


@pytest.mark.parametrize("where", ["is-a-directory", "parent-is-a-file"])
def test_unwritable_output_is_refused_before_upload(where: str, tmp_path: Path):
    """An output path that can never be written is refused up front, not after the batches ran."""
    src = fresh_requests(tmp_path / "in.jsonl", 2)
    if where == "is-a-directory":
        out = tmp_path / "out.jsonl"
        out.mkdir()
    else:
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "out.jsonl"
    with LocalBatchServer(api_key=KEY) as server:  # its own: an upload here must not spoil the catalogue's
        run = ("run", str(src), "--output", str(out), "--work-dir", str(tmp_path / "work"))
        env = cli_env(None, KEY, PREFECT_HOME=str(tmp_path / "prefect"))
        rc, stdout, stderr = _run_cli(server, env, *run)
        _assert_refused(server, rc, stdout, stderr, ("out.jsonl",))


def _refused_by_submit_file(server: LocalBatchServer, path: Path) -> None:
    """submit_file takes one file as it is: over the service's limits it must refuse before uploading."""
    with pytest.raises(BatchValidationError):
        submit_file(server.client(), path, endpoint="/v1/chat/completions")
    assert server.stats().get("POST /v1/files", 0) == 0


def test_submit_file_refuses_more_than_50000_requests_before_upload(tmp_path: Path):
    path = tmp_path / "big.jsonl"
    line = json.dumps(req("x")).encode()
    with open(path, "wb") as fh:
        for i in range(50_001):
            fh.write(line.replace(b'"x"', f'"r{i}"'.encode()) + b"\n")
    with LocalBatchServer() as server:
        _refused_by_submit_file(server, path)


@pytest.mark.slow
def test_submit_file_refuses_a_file_over_200_mb_before_upload(tmp_path: Path):
    path = tmp_path / "huge.jsonl"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a" * (1 << 20)}]}
    with open(path, "wb") as fh:
        for i in range(201):  # 201 MiB: over 209,715,200 bytes
            fh.write(json.dumps(req(f"r{i}", body)).encode() + b"\n")
    try:
        with LocalBatchServer() as server:
            _refused_by_submit_file(server, path)
    finally:
        path.unlink()
