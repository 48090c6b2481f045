"""Secrets (issue 8, item 5): a canary API key, given to `batch-openai local serve --api-key` and to the
CLI through the environment, never lands in Prefect's database, result storage, logs, artifacts, the
registry's records, exception text or any CLI output — neither when it works nor when it is refused."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flows_harness import PrefectServer, batch_openai_cmd, read_rows
from robust_helpers import cli_env, fresh_requests

from batch_openai import BatchAuthError, BatchJob


def _serve(canary: str, state: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    """`batch-openai local serve --api-key CANARY` on a free port; returns (process, base URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch_openai", "local", "serve", "--port", "0", "--step-seconds", "0.05",
         "--state-dir", str(state), "--api-key", canary],
        stdout=subprocess.PIPE,
        stderr=open(log, "w"),  # noqa: SIM115 - closed with the process
        text=True,
    )  # fmt: skip
    first = proc.stdout.readline() if proc.stdout else ""
    url = next((w for w in first.split() if w.startswith("http://")), "")
    assert url.endswith("/v1"), first
    return proc, url


@pytest.fixture
def canary_server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(canary key, base URL, server log) of a local server that requires the canary key."""
    canary = f"sk-canary-{secrets.token_hex(12)}"
    log = tmp_path / "serve.log"
    proc, url = _serve(canary, tmp_path / "server-state", log)
    try:
        yield canary, url, log
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        log.write_text(log.read_text() + (out or ""))


def _cli(
    prefect: PrefectServer, key: str, url: str, *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the canary server with `key` in the environment (never an argument)."""
    env = cli_env(prefect, key, OPENAI_BASE_URL=url)
    return subprocess.run(
        batch_openai_cmd(*args), env=env, capture_output=True, text=True, timeout=240, cwd=cwd
    )


def _prefect_api_dump(prefect: PrefectServer) -> str:
    """Logs, artifacts, variables (the registry's records), flow and task runs, as the API returns them."""
    parts = []
    with httpx.Client(base_url=prefect.api_url, timeout=30) as api:
        for route in (
            "logs",
            "artifacts",
            "variables",
            "flow_runs",
            "task_runs",
            "deployments",
            "block_documents",
        ):
            offset = 0
            while True:
                page = api.post(f"/{route}/filter", json={"limit": 200, "offset": offset})
                page.raise_for_status()
                rows = page.json()
                parts.append(json.dumps(rows))
                if len(rows) < 200:
                    break
                offset += 200
    return "\n".join(parts)


def _files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file())


def _assert_nowhere(canary: str, prefect: PrefectServer, *roots: Path, texts: tuple[str, ...] = ()) -> None:
    needle = canary.encode()
    # Prefect's home: the SQLite database with its WAL, result storage, cache records, locks, server log.
    for path in _files_under(prefect.home, *roots):
        assert needle not in path.read_bytes(), f"the key is in {path}"
    assert canary not in _prefect_api_dump(prefect)
    for text in texts:
        assert canary not in text


def test_a_canary_key_is_stored_and_printed_nowhere(
    robust_prefect: PrefectServer, canary_server: tuple[str, str, Path], tmp_path: Path
):
    canary, url, serve_log = canary_server
    src = fresh_requests(tmp_path / "in.jsonl", 6)
    out = tmp_path / "out.jsonl"
    run = _cli(robust_prefect, canary, url, "run", str(src), "-o", str(out), "--base-url", url,
               "--poll-interval", "0.1", "--work-dir", str(tmp_path / "work"), cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    rows = read_rows(out)
    assert {r["outcome"] for r in rows} == {"succeeded"}  # the key worked
    batch_id = rows[0]["batch_id"]
    texts = [run.stdout, run.stderr]
    for args in (("list",), ("status", batch_id), ("status", batch_id, "--json"), ("results", batch_id),
                 ("download", batch_id, "--output", str(tmp_path / "dl.jsonl"))):  # fmt: skip
        done = _cli(robust_prefect, canary, url, *args, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        texts += [done.stdout, done.stderr]
    assert batch_id in texts[2]  # `list` shows the registry's record of the batch
    _assert_nowhere(canary, robust_prefect, tmp_path, texts=tuple(texts))
    assert canary not in serve_log.read_text()


def test_a_refused_canary_key_is_not_echoed_anywhere(
    robust_prefect: PrefectServer, canary_server: tuple[str, str, Path], tmp_path: Path
):
    canary, url, serve_log = canary_server
    wrong = f"sk-canary-wrong-{secrets.token_hex(12)}"
    src = fresh_requests(tmp_path / "in.jsonl", 2)
    out = tmp_path / "o.jsonl"
    run = _cli(robust_prefect, wrong, url, "run", str(src), "-o", str(out), "--base-url", url,
               "--poll-interval", "0.1", "--work-dir", str(tmp_path / "work"), cwd=tmp_path)  # fmt: skip
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]  # Prefect's own log lines (with tracebacks) come before it
    assert last.startswith("error: ") and "401" in last
    status = _cli(robust_prefect, wrong, url, "status", "batch_doesnotmatter", cwd=tmp_path)
    assert status.returncode != 0 and "Traceback" not in status.stderr
    with pytest.raises(BatchAuthError) as info:  # the library's own exception text
        from openai import OpenAI

        BatchJob.from_id(OpenAI(api_key=wrong, base_url=url, max_retries=0), "batch_x")
    texts = (run.stdout, run.stderr, status.stdout, status.stderr, str(info.value), repr(info.value))
    for key in (wrong, canary):
        _assert_nowhere(key, robust_prefect, tmp_path, texts=texts)
    assert wrong not in serve_log.read_text()
