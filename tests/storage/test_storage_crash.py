"""`batch-openai run` with input, output and work directory on S3, SIGKILLed while it waits, then run
again as if on another machine: another working directory, another Prefect home (so another local result
storage and lock directory) and another temp dir; only the bucket and the Prefect server are shared."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import fsspec
import pytest
from flows_harness import (
    PrefectServer,
    batch_openai_cmd,
    count_batches,
    shared_prefect_server,
    wait_until,
    write_requests,
)

from batch_openai.local import LocalBatchServer

KEY = "sk-storage-crash-key"


def _machine(
    root: Path, name: str, prefect: PrefectServer, moto_env: dict[str, str]
) -> tuple[Path, dict[str, str]]:
    """A working directory and an environment of one "machine"."""
    home, tmp, cwd = (root / name / part for part in ("prefect-home", "tmp", "cwd"))
    for d in (home, tmp, cwd):
        d.mkdir(parents=True)
    env = prefect.env(OPENAI_API_KEY=KEY, PREFECT_HOME=str(home), TMPDIR=str(tmp), **moto_env)
    env.pop("BATCH_OPENAI_STAGING_DIR", None)
    return cwd, env


@pytest.mark.slow
def test_sigkill_mid_wait_then_rerun_on_another_machine(s3: str, moto, tmp_path: Path):
    prefect = shared_prefect_server()
    local = write_requests(tmp_path / "in.jsonl", 12, prefix="crash-s3")
    fsspec.filesystem("s3").put_file(str(local), f"{s3}/in.jsonl")
    out = f"{s3}/out/rows.jsonl"
    with LocalBatchServer(step_seconds=0.6, api_key=KEY) as server:
        args = [
            "run",
            f"{s3}/in.jsonl",
            "--output",
            out,
            "--work-dir",
            f"{s3}/work",
            "--base-url",
            server.base_url,
            "--batch-size",
            "4",
            "--poll-interval",
            "0.2",
            "--max-poll-interval",
            "0.5",
        ]
        client = server.client()
        cwd_a, env_a = _machine(tmp_path, "a", prefect, moto.env())
        log_a = open(tmp_path / "a.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            batch_openai_cmd(*args), cwd=cwd_a, env=env_a, stdout=log_a, stderr=subprocess.STDOUT
        )
        assert wait_until(lambda: count_batches(client) == 3, timeout=120), (tmp_path / "a.log").read_text()[
            -3000:
        ]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert not fsspec.filesystem("s3").exists(out)
        cwd_b, env_b = _machine(tmp_path, "b", prefect, moto.env())
        done = subprocess.run(
            batch_openai_cmd(*args), cwd=cwd_b, env=env_b, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert count_batches(client) == 3  # one batch per shard, across both machines
    with fsspec.open(out, "rb") as fh:
        rows = [json.loads(line) for line in fh.read().splitlines()]
    assert [r["custom_id"] for r in rows] == [f"crash-s3{i}" for i in range(12)]  # every row once, in order
    assert {r["outcome"] for r in rows} == {"succeeded"}
    assert not any((tmp_path / "b" / "cwd").iterdir())  # machine B kept nothing in its working directory
