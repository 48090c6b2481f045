"""Helpers for the robustness tests: the item-1 invariants, and `batch-openai run` as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from flows_harness import PrefectServer, batch_openai_cmd, read_rows, write_requests

FINGERPRINT_KEY = "batch_openai_fingerprint"
OUTCOMES = frozenset({"succeeded", "failed", "expired", "cancelled", "missing"})


def fresh_requests(path: Path, n: int) -> Path:
    """`n` chat requests whose content no other test has: the session's Prefect server is shared and
    its submit cache is keyed by content and base URL, and a free port can be handed out twice."""
    return write_requests(path, n, prefix=f"{uuid.uuid4().hex[:8]}-")


def input_ids(src: Path) -> list[str]:
    """The custom_ids of a batch-input JSONL, in file order."""
    return [json.loads(line)["custom_id"] for line in src.read_text().splitlines() if line.strip()]


def all_batches(client: Any) -> list[Any]:
    """Every batch the server holds, through the real `batches.list` pagination."""
    return list(client.batches.list(limit=100))


def assert_no_duplicate_batches(client: Any) -> list[Any]:
    """No two batches on the server were made for the same content (fingerprint in metadata)."""
    batches = all_batches(client)
    prints = Counter((b.metadata or {}).get(FINGERPRINT_KEY) for b in batches)
    assert None not in prints, "a batch without the fingerprint in its metadata"
    doubled = {fp: n for fp, n in prints.items() if n > 1}
    assert not doubled, f"duplicate batches for the same content: {doubled}"
    # No batch was made again on purpose either (a deliberate resubmission carries attempt >= 1).
    assert {(b.metadata or {}).get("batch_openai_attempt") for b in batches} <= {"0"}
    return batches


def assert_one_row_per_input(src: Path, out: Path) -> list[dict[str, Any]]:
    """Every input custom_id has exactly one output row, in input order, with a known outcome."""
    rows = read_rows(out)
    ids = input_ids(src)
    assert [r["custom_id"] for r in rows] == ids
    assert {r["outcome"] for r in rows} <= OUTCOMES
    return rows


def cli_env(prefect: PrefectServer | None, key: str, **extra: str) -> dict[str, str]:
    """Environment for a `batch-openai` subprocess: the session Prefect server (or none) and the key."""
    if prefect is not None:
        env = prefect.env(OPENAI_API_KEY=key)
    else:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env["OPENAI_API_KEY"] = key
    env.pop("OPENAI_BASE_URL", None)
    env.update(extra)
    return env


def start_run(
    base_url: str, prefect: PrefectServer, src: Path, out: Path, key: str, *extra: str
) -> subprocess.Popen[bytes]:
    """Start `batch-openai run` (fast polling, work dir beside the input) logging to a file."""
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
        base_url,
        "--work-dir",
        str(src.parent / "work"),
        *extra,
    )
    log = open(src.parent / f"run-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, env=cli_env(prefect, key), stdout=log, stderr=subprocess.STDOUT)


def last_log(directory: Path) -> str:
    """The tail of the newest run log in `directory`."""
    logs = sorted(directory.glob("run-*.log"))
    return logs[-1].read_text()[-3000:] if logs else ""


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a run and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def run_to_end(
    base_url: str, prefect: PrefectServer, src: Path, out: Path, key: str, *extra: str, timeout: float = 240
) -> None:
    """Run `batch-openai run` to the end and require exit 0."""
    proc = start_run(base_url, prefect, src, out, key, *extra)
    assert proc.wait(timeout) == 0, last_log(src.parent)
